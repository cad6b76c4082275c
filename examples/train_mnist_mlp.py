"""Train a 784-256-256-10 ReLU MLP on Fashion-MNIST (or MNIST) with minidl's Python API.

    python examples/train_mnist_mlp.py                 # Fashion-MNIST, 10 epochs, Adam
    python examples/train_mnist_mlp.py --dataset mnist --epochs 3

Needs the four IDX files: `apt-get install dataset-fashion-mnist` on Debian/Ubuntu, or put them in
$MINIDL_DATA/fashion-mnist/ (see minidl.data.datasets). Output: runs/example-<dataset>/.
"""
import argparse

import minidl as mdl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader, load_fashion_mnist, load_mnist, train_val_split
from minidl.training import Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion-mnist", "mnist"], default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    # 1. Data: uint8 images stay in memory once; batches are scaled to float32 in [0, 1] on the fly.
    load = load_fashion_mnist if args.dataset == "fashion-mnist" else load_mnist
    train_images, train_labels = load(split="train")
    test_images, test_labels = load(split="test")
    train, val = train_val_split(ArrayDataset(train_images, train_labels), val_size=5000, seed=0)
    train_loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    eval_loaders = {"val": DataLoader(val, batch_size=1000, shuffle=False),
                    "test": DataLoader(ArrayDataset(test_images, test_labels), batch_size=1000, shuffle=False)}

    # 2. Model and optimizer, PyTorch style. Weights are (fan_in, fan_out), Xavier/Glorot uniform init.
    mdl.manual_seed(0)
    model = nn.MLP([784, 256, 256, 10], activation="relu", init="xavier_uniform")
    optimizer = optim.Adam(model.parameters(), lr=5e-4)   # measured: 88.1-89.2% test accuracy, 10 epochs
    # (2026-12-02: 88.38 / 88.34 / 88.26% with the AVX-512 / AVX2 / generic kernels: each sums in its own order)

    # 3. Train: progress bar, metrics.jsonl, a checkpoint every epoch, model.npz at the end.
    #    A folder holds one run: when this script ran before, continue that run (to --epochs).
    trainer = Trainer(model, optimizer, train_loader, eval_loaders=eval_loaders,
                      out_dir=f"runs/example-{args.dataset}")
    if trainer.checkpoint_path.exists():
        trainer.resume()
    history = trainer.fit(epochs=args.epochs)
    print(f"test accuracy after {args.epochs} epochs: {100 * (1 - history[-1]['test_error']):.2f}%")

    # 4. The saved weights load back into a fresh model of the same shape.
    restored = nn.MLP([784, 256, 256, 10], activation="relu")
    restored.load_state_dict(mdl.load(f"runs/example-{args.dataset}/model.npz"))


if __name__ == "__main__":
    main()
