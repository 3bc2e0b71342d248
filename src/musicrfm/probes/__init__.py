"""Stage 4, probes: RFM probes per layer and the concept directions their AGOPs give.

- :mod:`.rfm` -- the Recursive Feature Machine (kernel ridge regression + AGOP), CPU and GPU;
- :mod:`.training` -- `train_directions`: splits, hyper-parameter search, one-vs-rest and
  multiclass probes per layer, eigenvectors with their signs;
- :mod:`.baselines` -- ridge, logistic, mean-difference and MLP probes for comparison;
- :mod:`.directions` -- `ConceptDirections`, the direction files (safetensors + JSON);
- :mod:`.tables` -- classification tables and per-layer score plots.
"""
