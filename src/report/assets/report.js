// cseg report: builds the page from the JSON that cseg embedded in it (see
// src/report/html_report.cpp for its shape). Tables and heatmaps are HTML; line, bar and scatter
// charts are drawn by Chart.js, which cseg inlines into the page at build time.
(function () {
  'use strict';

  const data = JSON.parse(document.getElementById('cseg-data').textContent);
  const app = document.getElementById('app');
  const haveCharts = typeof Chart !== 'undefined';
  const METHOD_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
    '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#ad494a', '#637939', '#8c6d31', '#7b4173'];
  if (haveCharts) {
    Chart.defaults.animation = false;  // drawn at once: printable, and screenshots see the final chart
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.font.size = 11;
  }

  // ---- small helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'style') e.style.cssText = v;
      else e.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const pct = (v) => (isNum(v) ? (100 * v).toFixed(1) : '–');
  const pctPm = (s) => (!s || !isNum(s.mean) ? '–' : s.n > 1 ? `${pct(s.mean)} ± ${pct(s.std)}` : pct(s.mean));
  const fixed = (v, d) => (isNum(v) ? v.toFixed(d) : '–');
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  const methodColour = (i) => METHOD_COLOURS[i % METHOD_COLOURS.length];

  function table(head, rows, className) {
    return el('table', { class: className || '' },
      el('thead', {}, el('tr', {}, head.map((h, i) => el('th', { class: i === 0 ? 'name' : '' }, h)))),
      el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) => el('td', { class: i === 0 ? 'name' : '' }, c))))));
  }

  // Perceptual colour scale (viridis stops) for heatmaps; t in [0, 1].
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function heatColour(t) {
    t = Math.min(1, Math.max(0, t));
    const x = t * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
    return VIRIDIS[i].map((a, k) => Math.round(a + f * (VIRIDIS[i + 1][k] - a)));
  }
  function heatCell(value, t, title) {
    if (!isNum(t)) return el('td', { title: title || '', style: 'background:#fff;color:#999' }, '–');
    const c = heatColour(t);
    const light = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 150;
    return el('td', { class: 'v', title: title || '', style: `background:${rgb(c)};color:${light ? '#000' : '#fff'}` }, value);
  }

  function chartBox(tall) {
    const canvas = el('canvas', {});
    return { box: el('div', { class: tall ? 'chart tall' : 'chart' }, canvas), canvas };
  }
  function newChart(canvas, config) {
    if (!haveCharts) return null;
    return new Chart(canvas, config);
  }
  function classSwatch(scenario, c) {
    return el('span', { class: 'swatch', style: `background:${rgb(scenario.class_colours[c] || [200, 200, 200])}` });
  }

  // ---- sections ----------------------------------------------------------------------------
  function summaryTable(sc) {
    const rows = sc.methods.map((m) => [m.name, pctPm(m.final.miou_old), pctPm(m.final.miou_new), pctPm(m.final.miou),
      pctPm(m.final.hiou), pct(m.final.forgetting), pct(m.final.avg_miou), fixed(m.cost.seconds_per_step, 1),
      fixed(m.cost.peak_rss_mb, 0), String(m.runs)]);
    return [el('h3', {}, 'Final step (test set, mIoU %)'),
      table(['method', 'old', 'new', 'all', 'hIoU', 'forgetting', 'avg mIoU', 's / step', 'peak MB', 'runs'], rows),
      el('p', { class: 'note' }, 'old = step-0 classes incl. background; new = classes added later; all = every class seen; ',
        'mean ± std over seeds where a method ran more than once.')];
  }

  function stepLabel(sc, k) {
    const added = sc.step_classes[k] || [];
    const text = added.length > 3 ? `${added.slice(0, 3).join(', ')}, …` : added.join(', ');
    return `step ${k}${text ? ' (+' + text + ')' : ''}`;
  }

  function curves(sc) {
    const out = [el('h3', {}, 'mIoU over steps')];
    const grid = el('div', { class: 'grid' });
    for (const [key, title] of [['miou', 'all classes'], ['miou_old', 'old classes'], ['miou_new', 'new classes']]) {
      const { box, canvas } = chartBox();
      grid.appendChild(el('div', {}, el('div', { class: 'meta' }, `mIoU (%), ${title}`), box));
      newChart(canvas, {
        type: 'line',
        data: {
          labels: sc.step_classes.map((_, k) => `step ${k}`),
          datasets: sc.methods.map((m, i) => ({
            label: m.name,
            data: sc.step_classes.map((_, k) => {
              const s = m.steps[k];
              return s && s[key] && isNum(s[key].mean) ? 100 * s[key].mean : null;
            }),
            borderColor: methodColour(i), backgroundColor: methodColour(i), spanGaps: false, tension: 0,
          })),
        },
        options: { scales: { y: { min: 0, title: { display: true, text: 'mIoU (%)' } } } },
      });
    }
    out.push(grid);
    return out;
  }

  // Methods as rows, steps as column groups: old / new / all mIoU after each step.
  function perStepTable(sc) {
    const n = sc.step_classes.length;
    const head1 = el('tr', {}, el('th', { class: 'name', rowspan: 2 }, 'method'),
      Array.from({ length: n }, (_, k) => el('th', { colspan: 3, title: stepLabel(sc, k) }, `step ${k}`)));
    const head2 = el('tr', {}, Array.from({ length: n }, () => ['old', 'new', 'all'].map((h) => el('th', {}, h))));
    const body = sc.methods.map((m) => el('tr', {}, el('td', { class: 'name' }, m.name),
      Array.from({ length: n }, (_, k) => {
        const s = m.steps[k];
        return [s && s.miou_old, s && s.miou_new, s && s.miou].map((v, i) =>
          el('td', { style: i === 2 ? 'font-weight:600' : '' }, pctPm(v)));
      })));
    const costRows = [];
    for (const m of sc.methods)
      costRows.push([m.name, ...m.steps.map((s) => `${fixed(s.train_seconds, 1)} s · ${fixed(s.images_per_second, 1)} img/s · ${fixed(s.peak_rss_mb, 0)} MB`)]);
    return [el('h3', {}, 'mIoU after each step (%, test set)'),
      el('table', {}, el('thead', {}, head1, head2), el('tbody', {}, body)),
      el('details', {}, el('summary', {}, 'training time, throughput and peak memory per step'),
        table(['method', ...Array.from({ length: n }, (_, k) => `step ${k}`)], costRows))];
  }

  function accuracyMatrices(sc) {
    const n = sc.step_classes.length;
    const grid = el('div', { class: 'grid' });
    // One colour scale for every method of the scenario, from 0 to the largest cell.
    let top = 0;
    for (const m of sc.methods) for (const row of m.accuracy_matrix) for (const v of row) if (isNum(v)) top = Math.max(top, v);
    top = top || 1;
    for (const m of sc.methods) {
      const head = el('tr', {}, el('th', { class: 'name' }, 'after \u2193 / task \u2192'),
        Array.from({ length: n }, (_, j) => el('th', { title: (sc.step_classes[j] || []).join(', ') }, `T${j}`)));
      const body = m.accuracy_matrix.map((row, i) => el('tr', {}, el('th', { class: 'name' }, `step ${i}`),
        row.map((v, j) => heatCell(pct(v), isNum(v) ? v / top : v, `after step ${i}, classes of step ${j}: ${pct(v)} %`))));
      grid.appendChild(el('div', {},
        el('table', { class: 'heat' }, el('caption', {}, m.name), el('thead', {}, head), el('tbody', {}, body)),
        el('div', { class: 'meta' }, `BWT ${pct(m.final.bwt)} · mean forgetting ${pct(m.final.forgetting)}`)));
    }
    return [el('h3', {}, 'Accuracy matrix (mIoU % on each step\'s classes, test set)'),
      el('p', { class: 'note' }, `Row i: after training step i; column j: the classes step j added (T0 includes background). `,
        `Colour scale from 0 to ${pct(top)} %, the scenario's largest cell.`), grid];
  }

  function perClassBars(sc) {
    const last = sc.step_classes.length - 1;
    const select = el('select', {}, sc.step_classes.map((_, k) =>
      el('option', k === last ? { value: k, selected: 'selected' } : { value: k }, `after step ${k}`)));
    const { box, canvas } = chartBox(true);
    const dataFor = (k) => sc.methods.map((m, i) => ({
      label: m.name, backgroundColor: methodColour(i),
      data: sc.class_names.map((_, c) => {
        const v = m.per_class_iou[k] ? m.per_class_iou[k][c] : null;
        return isNum(v) ? 100 * v : null;
      }),
    }));
    const chart = newChart(canvas, {
      type: 'bar',
      data: { labels: sc.class_names, datasets: dataFor(last) },
      options: { scales: { y: { min: 0, max: 100, title: { display: true, text: 'IoU (%)' } } } },
    });
    select.addEventListener('change', () => {
      if (!chart) return;
      chart.data.datasets = dataFor(Number(select.value));
      chart.update();
    });
    const legend = el('div', { class: 'legend' },
      sc.class_names.map((name, c) => el('span', {}, classSwatch(sc, c), name)));
    return [el('h3', {}, 'Per-class IoU', select), box,
      el('div', { class: 'meta' }, 'Class colours, as in the label images:'), legend];
  }

  function confusionMatrices(sc) {
    const names = sc.class_names, compact = names.length > 30;
    const grid = el('div', { class: 'grid wide' });
    for (const m of sc.methods) {
      if (!m.confusion) continue;
      const head = el('tr', {}, el('th', { class: 'name' }, 'truth \u2193 / predicted \u2192'),
        names.map((n, c) => el('th', { title: n }, compact ? '' : el('span', {}, classSwatch(sc, c)))));
      const body = m.confusion.map((row, t) => {
        const total = row.reduce((a, b) => a + b, 0);
        return el('tr', {}, el('th', { class: 'name' }, classSwatch(sc, t), names[t] || String(t)),
          row.map((v, p) => {
            const share = total > 0 ? v / total : NaN;
            const text = total > 0 ? Math.round(100 * share).toString() : '–';
            return heatCell(compact ? '' : text, share,
              `${names[t]} predicted as ${names[p]}: ${v} pixels (${fixed(100 * share, 1)} % of the row)`);
          }));
      });
      grid.appendChild(el('div', {},
        el('table', { class: compact ? 'heat compact' : 'heat' }, el('caption', {}, m.name), el('thead', {}, head),
          el('tbody', {}, body))));
    }
    return [el('h3', {}, 'Confusion matrix after the last step (% of each true class\'s pixels, summed over seeds)'),
      grid];
  }

  function predictions(sc) {
    const out = [el('h3', {}, 'Predictions on test images'),
      el('p', { class: 'note' }, 'Each image: one test image per row, as input | ground truth | prediction; ',
        'first seed of each method.')];
    const list = el('div', { class: 'predictions' });
    let shown = 0;
    sc.step_classes.forEach((_, k) => {
      const figures = [];
      for (const m of sc.methods) {
        const src = m.images[k];
        if (!src) continue;
        figures.push(el('figure', {}, el('figcaption', {}, m.name), el('img', { src, alt: `${m.name} step ${k}` })));
        shown++;
      }
      if (figures.length) list.appendChild(el('div', { class: 'row' }, el('div', { class: 'step' }, stepLabel(sc, k)), figures));
    });
    if (!shown) out.push(el('p', { class: 'note' }, 'No prediction images in these runs (predictions/step<k>.png).'));
    out.push(list);
    return out;
  }

  function accuracyVersusCost(sc) {
    const axes = [
      ['seconds_per_step', 'training time per step (s)'],
      ['peak_rss_mb', 'peak resident memory (MB)'],
      ['gmacs_train', 'multiply-adds per training image (G)'],
      ['latency_ms', 'inference latency, batch 1 (ms)'],
    ];
    const grid = el('div', { class: 'grid' });
    for (const [key, title] of axes) {
      const xs = sc.methods.map((m) => m.cost[key]).filter(isNum);
      // A cost every method shares (the same model's multiply-adds) is in the table, not a chart.
      if (xs.length === 0 || Math.max(...xs) - Math.min(...xs) <= 1e-9 * Math.max(1, Math.abs(xs[0]))) continue;
      const { box, canvas } = chartBox();
      grid.appendChild(el('div', {}, el('div', { class: 'meta' }, `final mIoU (%) against ${title}`), box));
      newChart(canvas, {
        type: 'scatter',
        data: {
          datasets: sc.methods.map((m, i) => ({
            label: m.name, backgroundColor: methodColour(i), borderColor: methodColour(i), pointRadius: 6,
            data: isNum(m.cost[key]) && m.final.miou && isNum(m.final.miou.mean)
              ? [{ x: m.cost[key], y: 100 * m.final.miou.mean }] : [],
          })),
        },
        options: {
          scales: {
            x: { grace: '10%', title: { display: true, text: title } },
            y: { min: 0, grace: '10%', title: { display: true, text: 'final mIoU (%)' } },
          },
        },
      });
    }
    const rows = sc.methods.map((m) => [m.name, fixed(m.cost.params / 1e6, 2), fixed(m.cost.gmacs_train, 2),
      fixed(m.cost.gmacs_test, 2), fixed(m.cost.latency_ms, 1), fixed(m.cost.seconds_per_step, 1),
      fixed(m.cost.images_per_second, 1), fixed(m.cost.peak_rss_mb, 0),
      isNum(m.cost.replay_mb) ? fixed(m.cost.replay_mb, 1) : '–']);
    return [el('h3', {}, 'Accuracy versus cost'), grid,
      table(['method', 'params (M)', 'GMACs train', 'GMACs test', 'latency ms', 's / step', 'img / s', 'peak MB',
        'replay MB'], rows)];
  }

  function configSection(sc) {
    const out = [];
    const rows = sc.summary.map(([k, v]) => [k, String(v)]);
    out.push(el('h3', {}, 'What was run'), table(['', ''], rows, 'kv'));
    if (sc.command) out.push(el('details', {}, el('summary', {}, 'command'), el('pre', {}, sc.command)));
    if (sc.config_yaml) out.push(el('details', {}, el('summary', {}, 'resolved config (config.yaml)'), el('pre', {}, sc.config_yaml)));
    return out;
  }

  // ---- page --------------------------------------------------------------------------------
  app.textContent = '';
  app.appendChild(el('h1', {}, data.title));
  app.appendChild(el('p', { class: 'meta' }, `cseg ${data.cseg_version} · generated ${data.generated} · `,
    `${data.runs} run(s) in ${data.scenarios.length} scenario(s)`));
  if (!haveCharts)
    app.appendChild(el('p', { class: 'warning' }, 'Charts are missing: this cseg was built without Chart.js ',
      '(Debian package libjs-chart.js). Tables and images are complete.'));
  for (const sc of data.scenarios) {
    const section = el('section', { id: `scenario-${sc.name.replace(/\W+/g, '-')}` });
    section.appendChild(el('h2', {}, sc.name));
    section.appendChild(el('p', { class: 'meta' },
      `${sc.dataset} · ${sc.model} · protocol ${sc.protocol} · ${sc.step_classes.length} steps · ${sc.class_names.length} classes`));
    for (const part of [summaryTable, curves, perStepTable, accuracyMatrices, perClassBars, confusionMatrices,
      predictions, accuracyVersusCost, configSection])
      section.append(...part(sc));
    app.appendChild(section);
  }
  document.body.setAttribute('data-rendered', 'true');
})();
