"""The training loop shared by `minidl train` and the experiments (see minidl.training.trainer).

    from minidl.training import Trainer, Every, evaluate
    trainer = Trainer(model, optimizer, train_loader, eval_loaders={"test": test_loader}, out_dir="runs/x")
    history = trainer.fit(epochs=10)        # list of per-epoch records, also in runs/x/metrics.jsonl
"""
from minidl.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minidl.training.metrics import MetricsError, read_records
from minidl.training.run_lock import FolderLocked
from minidl.training.trainer import Every, Trainer, TrainingDiverged, TrainingInterrupted, evaluate

__all__ = ["Trainer", "Every", "evaluate", "TrainingDiverged", "TrainingInterrupted",
           "save_checkpoint", "load_checkpoint", "CheckpointError", "read_records",
           "MetricsError", "FolderLocked"]
