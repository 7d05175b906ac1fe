#pragma once
/// Metrics over a sequence of steps (docs/protocols.md, "Metrics").
#include <optional>
#include <vector>

namespace cseg::metrics {

/// R[i][j] = score on task j after training step i; nullopt where not defined (for class-
/// incremental runs, tasks not learnt yet: j > i).
using AccuracyMatrix = std::vector<std::vector<std::optional<double>>>;

/// forgetting_j = max_{i<T} R[i][j] - R[T][j] for every task j < T (T = last step); entries
/// for j = T, or where no earlier score exists, are nullopt.
std::vector<std::optional<double>> forgetting(const AccuracyMatrix& r);

/// BWT = mean over j < T of R[T][j] - R[j][j]; nullopt for a single step.
std::optional<double> backward_transfer(const AccuracyMatrix& r);

/// FWT = mean over j > 0 of R[j-1][j] - initial[j], where initial[j] is the score of the model
/// before any training on task j (domain-incremental runs, where R[j-1][j] exists); nullopt when
/// no term is defined.
std::optional<double> forward_transfer(const AccuracyMatrix& r, const std::vector<std::optional<double>>& initial);

/// Mean of the defined entries of the last row (ACC).
std::optional<double> final_average(const AccuracyMatrix& r);

}  // namespace cseg::metrics
