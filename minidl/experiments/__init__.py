"""The Glorot & Bengio (2010) study behind `minidl reproduce`. Activations and init schemes are the
registries' (minidl.activations, minidl.init): any name they accept, the study accepts.

    config.py         presets (quick / default / full) and the configuration dataclasses
    data.py           Fashion-MNIST when installed, else Shapeset-3x2
    networks.py       the deep MLPs and their LayerProbe
    at_init.py        statistics of untrained nets (Figs. 6-8, Eq. 17, variance propagation)
    training_study.py training in the paper's setting on the shared Trainer (Figs. 2-4, 11-12)
    study.py          runs everything under one progress bar, writing results as they finish
    results.py        results.json layout and the CSVs
    figures.py        the PNG figures;  report.py  report.md generated from the numbers
    paper.py          the paper's own numbers (Table 1)
"""
from minidl.experiments.config import AtInitConfig, StudyConfig, TrainingConfig, preset
from minidl.experiments.study import Study, run_study

__all__ = ["AtInitConfig", "TrainingConfig", "StudyConfig", "preset", "Study", "run_study"]
