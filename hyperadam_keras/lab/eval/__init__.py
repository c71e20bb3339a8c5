"""Evaluation: suites as data, tuned baselines, the run cache, reports and speed benchmarks.

Modules, one concern each (`evaluate` and `report` gather their public names in one namespace):

- `suites`: the comparison suites as data (`Suite`, `TaskSpec`, `get_suite`, `register_suite`);
  `references`: the reference numbers the reports print beside the measured ones, and their provenance;
- `baselines`: the optimizers compared (`OptimizerSpec`, the Keras baselines, `hyperadam_spec`);
- `trainer`: compiled training of one task with one optimizer (`Trainer`, `RunResult`);
- `tuning`: the tuning seeds and the learning-rate grid search; `stats`: statistics over seeds;
- `cache`: the run cache and the identities its keys hash;
- `runner`: `evaluate_task` and `run_suite`; `bench`: `run_bench`; `speed`: step time and FLOP/s;
  `machine`: what the numbers were measured on;
- `formatting`, `markdown_report`, `plots`, `report`: the reports (numbers, Markdown, PNGs, files);
- `compare`, `compare_builder`, `compare_report`: `hyperadam-keras compare`, HyperAdam against tuned Adam
  on a user's own model (the builder contract, the runs, the table and plot).
"""
