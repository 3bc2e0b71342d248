"""Stage 4, probes: RFM probes per layer and the concept directions their AGOPs give.

- :mod:`.kernels` -- the kernel maths: distances, kernel, predictor gradients, AGOP, KRR solve;
- :mod:`.metrics` -- AUC, macro AUC and R^2;
- :mod:`.rfm` -- the Recursive Feature Machine (kernel ridge regression + AGOP), CPU and GPU;
- :mod:`.search` -- hyper-parameter search over the paper's space, and the budgets;
- :mod:`.splits` -- task inference, class order, seeded stratified splits, balanced subsets;
- :mod:`.training` -- `train_directions`: one-vs-rest and multiclass probes per layer,
  eigenvectors with their signs;
- :mod:`.baselines` -- ridge, logistic, mean-difference and MLP probes for comparison;
- :mod:`.directions` -- `ConceptDirections`, the direction files (safetensors + JSON);
- :mod:`.tables` -- classification tables and per-layer score plots.
"""
