"""models_jt.py: the training workloads (W1, W2, W7) written once against
the Jittor API. `make(jt)` takes the imported module, so the same source
runs under `import jittor as jt` and `import kiln as jt`.

Only public API is used (nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.ReLU,
nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.CrossEntropyLoss, optim.SGD with
momentum, optimizer.step(loss)), so kiln picks up whatever the daemon does
behind them (e.g. matmul/conv library relays).
models_torch.py holds the PyTorch twins; keep the two in step.
"""


def make(jt):
    nn = jt.nn

    class MLP(nn.Module):
        """W1: 784-512-512-10, ReLU."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 512)
            self.fc2 = nn.Linear(512, 512)
            self.fc3 = nn.Linear(512, 10)
            self.relu = nn.ReLU()

        def execute(self, x):
            return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))

    class SmallCNN(nn.Module):
        """W2: conv3x3(3->32)+ReLU, conv3x3(32->64)+ReLU, maxpool 2,
        conv3x3(64->128)+ReLU, global average pool, linear(128->10);
        padding 1 keeps 32x32 (16x16 after the pool)."""

        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 32, 3, padding=1)
            self.c2 = nn.Conv2d(32, 64, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.c3 = nn.Conv2d(64, 128, 3, padding=1)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(128, 10)
            self.relu = nn.ReLU()

        def execute(self, x):
            x = self.relu(self.c1(x))
            x = self.pool(self.relu(self.c2(x)))
            x = self.relu(self.c3(x))
            x = self.gap(x).reshape((x.shape[0], 128))
            return self.fc(x)

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def execute(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            sc = x if self.down is None else self.down(x)
            return self.relu(out + sc)

    class ResNet18(nn.Module):
        """W7: CIFAR-style ResNet-18: 3x3 stem, no max-pool, four stages
        of two BasicBlocks (64/128/256/512), BatchNorm, 10 classes."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            layers = []
            cin = 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers.append(BasicBlock(cin, cout, stride))
                layers.append(BasicBlock(cout, cout, 1))
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def execute(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layers(x)
            x = self.gap(x).reshape((x.shape[0], 512))
            return self.fc(x)

    return {"MLP": MLP, "SmallCNN": SmallCNN, "ResNet18": ResNet18}


def train_step_fn(jt, model, lr=0.01, momentum=0.9):
    """One SGD-momentum step on (x, y); returns the step function. The
    step ends with loss.item(), which waits for the whole step (kiln:
    every kept var of a SUBMIT is ready together; Jittor: see cell.py,
    which also calls jt.sync_all())."""
    opt = jt.optim.SGD(model.parameters(), lr, momentum=momentum)
    crit = jt.nn.CrossEntropyLoss()

    def step(x, y):
        loss = crit(model(x), y)
        opt.step(loss)
        return loss

    return step
