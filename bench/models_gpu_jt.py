"""models_gpu_jt.py: the GPU benchmark's own training workloads, written
once against the Jittor API, as bench/peers/models_jt.py is: `make(jt)`
takes the imported module (`import kiln as jt` or `import jittor as jt`).
models_gpu_torch.py holds the PyTorch twins; keep the two in step.

- ResNet50: the bottleneck ResNet-50 for ImageNet shapes (7x7 stride-2
  stem, 3x3 stride-2 max-pool, stages of 3/4/6/3 bottlenecks of width
  64/128/256/512 and expansion 4, the stride on the 3x3 conv, a 1x1
  projection with BatchNorm where the shape changes, global average pool,
  linear to the classes).
- Generator / Discriminator: DCGAN for 64x64 RGB images, trained as a
  least-squares GAN (MSE losses): the generator is a stack of
  ConvTranspose2d (4x4, stride 2) with BatchNorm and ReLU, Tanh last; the
  discriminator a stack of Conv2d (4x4, stride 2) with BatchNorm (not on
  the first) and LeakyReLU(0.2), a 4x4 conv to one score last.

Only public API: nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU,
nn.LeakyReLU, nn.Tanh, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear,
nn.CrossEntropyLoss, nn.MSELoss, optim.SGD, optim.Adam, opt.step(loss).
"""


def make(jt):
    nn = jt.nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * 4
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def execute(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            sc = x if self.down is None else self.down(x)
            return self.relu(out + sc)

    class ResNet50(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            layers = []
            cin = 64
            for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                for i in range(blocks):
                    layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
                    cin = width * 4
            self.layers = nn.Sequential(*layers)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, num_classes)

        def execute(self, x):
            x = self.pool(self.relu(self.bn1(self.conv1(x))))
            x = self.layers(x)
            x = self.gap(x).reshape((x.shape[0], 2048))
            return self.fc(x)

    class Generator(nn.Module):
        """z [N, nz, 1, 1] -> image [N, 3, 64, 64] in [-1, 1]."""

        def __init__(self, nz=100, ngf=64):
            super().__init__()
            chans = (ngf * 8, ngf * 4, ngf * 2, ngf)
            mods = [nn.ConvTranspose2d(nz, chans[0], 4, 1, 0, bias=False),
                    nn.BatchNorm2d(chans[0]), nn.ReLU()]
            for a, b in zip(chans, chans[1:]):
                mods += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b),
                         nn.ReLU()]
            mods += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
            self.main = nn.Sequential(*mods)

        def execute(self, z):
            return self.main(z)

    class Discriminator(nn.Module):
        """image [N, 3, 64, 64] -> score [N, 1, 1, 1] (no sigmoid: LSGAN)."""

        def __init__(self, ndf=64):
            super().__init__()
            chans = (ndf, ndf * 2, ndf * 4, ndf * 8)
            mods = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
            for a, b in zip(chans, chans[1:]):
                mods += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b),
                         nn.LeakyReLU(0.2)]
            mods += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False)]
            self.main = nn.Sequential(*mods)

        def execute(self, x):
            return self.main(x)

    return {"ResNet50": ResNet50, "Generator": Generator, "Discriminator": Discriminator}


def gan_step_fn(jt, gen, disc, lr=2e-4, betas=(0.5, 0.999)):
    """One LSGAN iteration: a discriminator step (real -> 1, generated ->
    0, the generated images detached), then a generator step (generated
    -> 1, through the updated discriminator). Returns step(z, real) ->
    (loss_d, loss_g)."""
    opt_d = jt.optim.Adam(disc.parameters(), lr, betas=betas)
    opt_g = jt.optim.Adam(gen.parameters(), lr, betas=betas)
    mse = jt.nn.MSELoss()

    def step(z, real, ones, zeros):
        fake = gen(z)
        loss_d = (mse(disc(real), ones) + mse(disc(fake.detach()), zeros)) * 0.5
        opt_d.step(loss_d)
        loss_g = mse(disc(fake), ones)
        opt_g.step(loss_g)
        return loss_d, loss_g

    return step
