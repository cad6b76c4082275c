"""Train an MLP with Dropout, BatchNorm1d, AdamW and a cosine learning-rate schedule, PyTorch style.

    python examples/train_mlp_regularized.py                    # Fashion-MNIST, 4 epochs on 20k images
    python examples/train_mlp_regularized.py --train-size 60000 --epochs 10
    python examples/train_mlp_regularized.py --dataset shapeset

Uses Fashion-MNIST when its files are found (`apt-get install dataset-fashion-mnist`, or $MINIDL_DATA),
else generates Shapeset-3x2, minidl's built-in dataset. Shows the train()/eval() switch: Dropout drops
units and BatchNorm1d uses batch statistics while training; in evaluation Dropout is the identity and
BatchNorm1d uses its running estimates. Prints the test accuracy.
"""
import argparse

import numpy as np

import minidl as mdl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader, DatasetNotFoundError, load_fashion_mnist, shapeset


def load_data(dataset: str, train_size: int, test_size: int):
    """(train, test, name): Fashion-MNIST when installed (dataset "auto"), else Shapeset-3x2."""
    name = "Shapeset-3x2"
    try:
        if dataset == "shapeset":
            raise DatasetNotFoundError("Shapeset-3x2 asked for")
        train_images, train_labels = load_fashion_mnist(split="train")
        test_images, test_labels = load_fashion_mnist(split="test")
        name = "Fashion-MNIST"
    except DatasetNotFoundError:
        if dataset == "auto":
            name += " (Fashion-MNIST not found)"
        train_images, train_labels = shapeset(train_size, seed=0)
        test_images, test_labels = shapeset(test_size, seed=1)
    train = ArrayDataset(train_images[:train_size], train_labels[:train_size])
    test = ArrayDataset(test_images[:test_size], test_labels[:test_size])
    return train, test, name


def accuracy(model, loader) -> float:
    model.eval()                       # Dropout off, BatchNorm1d on its running estimates
    correct = total = 0
    with mdl.no_grad():
        for x, y in loader:
            correct += int((model(mdl.tensor(x)).data.argmax(axis=1) == y).sum())
            total += len(y)
    return correct / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["auto", "shapeset"], default="auto")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--test-size", type=int, default=10000)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    if min(args.epochs, args.train_size, args.test_size, args.hidden) < 1:
        parser.error("--epochs, --train-size, --test-size and --hidden must be positive")

    train, test, name = load_data(args.dataset, args.train_size, args.test_size)
    train_loader = DataLoader(train, batch_size=128, shuffle=True, seed=0, drop_last=True)
    test_loader = DataLoader(test, batch_size=1000, shuffle=False)

    mdl.manual_seed(0)
    h = args.hidden
    model = nn.Sequential(
        nn.Linear(train.num_features, h, init="kaiming_uniform"), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(h, h, init="kaiming_uniform"), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(h, train.num_classes))
    optimizer = optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    print(f"{name}: {len(train)} training and {len(test)} test images")
    print(model)

    for epoch in range(args.epochs):
        model.train()
        losses = []
        for x, y in train_loader:
            loss = loss_fn(model(mdl.tensor(x)), y)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            losses.append(loss.item())
        lr = scheduler.get_last_lr()[0]
        scheduler.step()                  # once per epoch, after the optimizer's steps
        test_accuracy = accuracy(model, test_loader)
        print(f"epoch {epoch + 1}: lr {lr:.2e}, train loss {np.mean(losses):.4f}, "
              f"test accuracy {100 * test_accuracy:.2f}%")
    print(f"test accuracy: {100 * test_accuracy:.2f}%")


if __name__ == "__main__":
    main()
