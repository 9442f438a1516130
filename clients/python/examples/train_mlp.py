"""Train the two-layer network of the seed: 1 input, a hidden layer of 10
with sigmoid, 1 output, L2 loss, plain SGD on batches of 50, fitting a
smooth 1-D function (y = sin(3x) on [-1, 1]) from scratch.

Written the way Jittor's README writes it, with `import kiln as jt`:

    PYTHONPATH=clients/python python3 clients/python/examples/train_mlp.py

Each optimizer.step(loss) adds the backward pass and the update to the
lazy graph, so forward, gradients and update reach kilnd as one SUBMIT
(at the loss print, a sync point). Options: --steps N, --lr LR, --seed S,
--every K (print every K steps).
"""
import argparse
import time

import numpy as np

import kiln as jt
from kiln import nn


class Model(nn.Module):
    def __init__(self):
        self.layer1 = nn.Linear(1, 10)
        self.sigmoid = nn.Sigmoid()
        self.layer2 = nn.Linear(10, 1)

    def execute(self, x):
        return self.layer2(self.sigmoid(self.layer1(x)))


def get_data(n, batch_size, rng):
    for _ in range(n):
        x = rng.uniform(-1.0, 1.0, (batch_size, 1)).astype(np.float32)
        y = np.sin(3.0 * x)
        yield jt.float32(x), jt.float32(y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=100)
    args = ap.parse_args(argv)

    jt.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = Model()
    optim = nn.SGD(model.parameters(), args.lr)
    t0 = time.monotonic()
    losses = []
    for i, (x, y) in enumerate(get_data(args.steps, args.batch, rng)):
        pred_y = model(x)
        dy = pred_y - y
        loss = (dy * dy).mean()
        optim.step(loss)
        if i % args.every == 0 or i == args.steps - 1:
            losses.append(loss.item())
            print(f"step {i:5d}  loss {losses[-1]:.6f}", flush=True)
    dt = time.monotonic() - t0
    print(f"{args.steps} steps in {dt:.2f} s ({1000 * dt / args.steps:.2f} ms/step); "
          f"loss {losses[0]:.4f} -> {losses[-1]:.6f}")
    return losses


if __name__ == "__main__":
    main()
