// Injected by tests/test_report.cpp at the end of a rendered report: once the page (and its
// images) have loaded, records what was drawn into <pre id="cseg-check"> for the test to read.
window.addEventListener('load', function () {
  'use strict';
  var out = {
    errors: window.__csegErrors || [],
    rendered: document.body.getAttribute('data-rendered') === 'true',
    charts: 0, charts_with_marks: 0,
  };
  // A chart counts as drawn when its plot area (not the legend) holds pixels of a method colour.
  var methodColours = [[31, 119, 180], [255, 127, 14]];
  var canvases = document.querySelectorAll('canvas');
  for (var k = 0; k < canvases.length; k++) {
    var chart = window.Chart && Chart.getChart(canvases[k]);
    if (!chart) continue;
    out.charts++;
    var a = chart.chartArea, r = window.devicePixelRatio || 1;
    var x0 = Math.floor(a.left * r), y0 = Math.floor(a.top * r);
    var w = Math.ceil((a.right - a.left) * r), h = Math.ceil((a.bottom - a.top) * r);
    var px = canvases[k].getContext('2d').getImageData(x0, y0, w, h).data, hits = 0;
    for (var i = 0; i < px.length; i += 4) {
      if (px[i + 3] < 200) continue;
      for (var c = 0; c < methodColours.length; c++) {
        var m = methodColours[c];
        if (Math.abs(px[i] - m[0]) < 8 && Math.abs(px[i + 1] - m[1]) < 8 && Math.abs(px[i + 2] - m[2]) < 8) { hits++; break; }
      }
    }
    if (hits >= 20) out.charts_with_marks++;
  }
  out.canvases = canvases.length;
  var imgs = document.querySelectorAll('img');
  out.images = imgs.length;
  out.images_loaded = 0;
  for (var j = 0; j < imgs.length; j++) if (imgs[j].complete && imgs[j].naturalWidth > 0) out.images_loaded++;
  out.heat_cells = document.querySelectorAll('table.heat td.v').length;
  out.sections = document.querySelectorAll('section').length;
  out.headings = Array.prototype.map.call(document.querySelectorAll('h3'), function (e) { return e.textContent; });
  var pre = document.createElement('pre');
  pre.id = 'cseg-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
