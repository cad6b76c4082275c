"""Numbers reported by Glorot & Bengio (2010), for comparison beside this run's own.

Table 1: test error (%) of 5-hidden-layer nets; "N" = normalized (Xavier) initialization. The paper has
no "Sigmoid N" row; its Sigmoid Shapeset entry (82.61) is the majority-class baseline: the net failed.
"""
TABLE1_DATASETS = ("Shapeset", "MNIST", "CIFAR-10", "Small-ImageNet")
TABLE1 = {
    ("softsign", "standard"): (16.27, 1.64, 55.78, 69.14),
    ("softsign", "xavier_uniform"): (16.06, 1.72, 53.8, 68.13),
    ("tanh", "standard"): (27.15, 1.76, 55.9, 70.58),
    ("tanh", "xavier_uniform"): (15.60, 1.64, 52.92, 68.57),
    ("sigmoid", "standard"): (82.61, 2.21, 57.28, 70.66),
}
JACOBIAN_MEAN_SINGULAR_VALUE = {"standard": 0.5, "xavier_uniform": 0.8}   # Sec. 4.2.1
ACTIVATION_STD_RATIO_TANH = {"standard": 0.57, "xavier_uniform": 1.0}    # Fig. 6 reading, sqrt(1/3)
# Fig. 7 reading: back-propagated gradient std at the top hidden layer over layer 1, 5 layers
BACKPROP_GRADIENT_RATIO_TANH = {"standard": 10.0, "xavier_uniform": 1.7}
PAPER_UPDATES = 5_000_000
PAPER_BATCH_SIZE = 10
TABLE1_DEPTH = 5          # hidden layers of the nets behind Table 1
TABLE1_WIDTH = 1000       # units in each of them


def table1_row(activation: str, scheme: str) -> dict | None:
    values = TABLE1.get((activation, scheme))
    return None if values is None else dict(zip(TABLE1_DATASETS, values))
