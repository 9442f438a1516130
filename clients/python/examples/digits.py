"""Classify scikit-learn's bundled 8x8 handwritten digits with kiln: an MLP
and a small CNN, trained from scratch with Adam, a tqdm progress bar
showing each batch's loss and accuracy, and the test accuracy after
every epoch.

Written the way Jittor code is written, with `import kiln as jt`:

    PYTHONPATH=clients/python python3 clients/python/examples/digits.py

The data set (1797 images, 10 classes) ships inside scikit-learn
(sklearn.datasets.load_digits; Debian: python3-sklearn), so nothing is
downloaded. It is split 80/20 into training and test sets with a fixed
seed, and the weights are initialised from a fixed seed, so a run is
repeatable. Each batch's optimizer.step(loss) puts forward pass, backward
pass and update into the lazy graph; reading the loss and the accuracy
for the progress bar is the sync point that sends them to kilnd as one
SUBMIT. Exits non-zero if a model's final test accuracy is under
--min-accuracy.

Options: --models mlp cnn, --epochs N (both models), --batch-size B,
--seed S, --min-accuracy A (0 to 1), --no-progress.
"""
import argparse
import sys
import time

import numpy as np

import kiln as jt
from kiln import nn

try:
    from tqdm import tqdm
except ImportError:  # a plain fallback; Debian's python3-tqdm gives the real bar
    tqdm = None


class MLP(nn.Module):
    def __init__(self):
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)
        self.relu = nn.ReLU()

    def execute(self, x):
        x = x.reshape(x.shape[0], 64)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    def __init__(self):
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)    # 8 x 8 x 8
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)   # 16 x 4 x 4 after pooling
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def execute(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc(x.reshape(x.shape[0], -1))


# name: (model, epochs, learning rate)
MODELS = {"mlp": (MLP, 20, 2e-3), "cnn": (CNN, 15, 3e-3)}


def load(seed):
    """(x_train, y_train, x_test, y_test): images as float32 1x8x8 in
    [0, 1], labels as int32, split 80/20 with a fixed permutation."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int32)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_train = int(round(0.8 * len(y)))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


def accuracy(model, x, y, batch_size=512):
    model.eval()
    correct = 0
    with jt.no_grad():
        for k in range(0, len(y), batch_size):
            pred, _ = model(jt.array(x[k:k + batch_size])).argmax(1)
            correct += int((pred.numpy() == y[k:k + batch_size]).sum())
    model.train()
    return correct / len(y)


class Bar:
    """tqdm, or a line per epoch where tqdm is missing or turned off."""

    def __init__(self, total, desc, enabled):
        self.bar = tqdm(total=total, desc=desc, unit="batch", leave=True,
                        dynamic_ncols=True) if tqdm is not None and enabled else None
        self.desc = desc
        self.post = {}

    def update(self, **post):
        self.post = post
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def close(self, **post):
        self.post.update(post)
        if self.bar is not None:
            self.bar.set_postfix(self.post)
            self.bar.close()
        else:
            print(f"{self.desc}: " + ", ".join(f"{k}={v}" for k, v in self.post.items()),
                  flush=True)


def train(name, data, epochs, batch_size, lr, seed, progress):
    """Train one model; returns (test accuracy, seconds)."""
    x_train, y_train, x_test, y_test = data
    jt.seed(seed)
    np.random.seed(seed)
    cls, default_epochs, default_lr = MODELS[name]
    model = cls()
    epochs = epochs or default_epochs
    optimizer = jt.optim.Adam(model.parameters(), lr or default_lr)
    rng = np.random.default_rng(seed)
    batches = (len(y_train) + batch_size - 1) // batch_size
    t0 = time.monotonic()
    acc = 0.0
    for epoch in range(epochs):
        bar = Bar(batches, f"{name} epoch {epoch + 1:2d}/{epochs}", progress)
        perm = rng.permutation(len(y_train))
        for b in range(batches):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            x, y = jt.array(x_train[idx]), jt.array(y_train[idx])
            out = model(x)
            loss = nn.cross_entropy_loss(out, y)
            optimizer.step(loss)
            pred, _ = out.argmax(1)
            batch_acc = (pred == y).float32().mean()
            jt.sync([loss, batch_acc])  # one SUBMIT: forward, backward, update
            bar.update(loss=f"{loss.item():.4f}", acc=f"{batch_acc.item():.3f}")
        acc = accuracy(model, x_test, y_test)
        bar.close(test_acc=f"{acc:.4f}")
    return acc, time.monotonic() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=0, help="epochs per model (default: its own)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.0, help="Adam's rate (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-accuracy", type=float, default=0.95)
    p.add_argument("--no-progress", action="store_true", help="a line per epoch, no bar")
    args = p.parse_args(argv)

    t0 = time.monotonic()
    data = load(args.seed)
    print(f"digits: {len(data[1])} training and {len(data[3])} test images of 8x8, "
          f"10 classes", flush=True)
    results = {}
    for name in args.models:
        results[name] = train(name, data, args.epochs, args.batch_size, args.lr, args.seed,
                              not args.no_progress)
    ok = True
    for name, (acc, secs) in results.items():
        good = acc >= args.min_accuracy
        ok = ok and good
        print(f"digits: {name.upper()} test accuracy {100 * acc:.2f}% in {secs:.1f} s"
              + ("" if good else f" (under {100 * args.min_accuracy:.0f}%)"), flush=True)
    print(f"digits: total {time.monotonic() - t0:.1f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
