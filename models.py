"""The networks of the ensemble (paper §2.2: "three models", their probabilities averaged).
The paper does not name them; here they are three U-Net variants built from the same small
blocks, so that they differ in one idea each:

    unet     classic U-Net (Ronneberger et al. 2015): DoubleConv blocks, skip connections
    resunet  the same with residual blocks (He et al. 2016) in the encoder and decoder
    attunet  the same with attention gates on the skip connections (Oktay et al. 2018)

Input 14 bands, output one landslide logit per pixel at input resolution; H and W must be
divisible by 16 (four 2x poolings).

    python models.py        # prints each model's parameter count at the default width
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    """(3x3 conv -> BatchNorm -> ReLU) x 2.  [B, cin, H, W] -> [B, cout, H, W]"""

    def __init__(self, cin, cout):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True))

    def forward(self, x):
        return self.net(x)


class ResBlock(nn.Module):
    """DoubleConv whose input is added back (through a 1x1 conv when widths differ).
    [B, cin, H, W] -> [B, cout, H, W]"""

    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class AttentionGate(nn.Module):
    """Scales a skip connection by a per-pixel weight in (0, 1) computed from the skip and
    the decoder signal, so the decoder can suppress irrelevant background.
    skip: [B, cs, H, W], gate: [B, cg, H, W] -> [B, cs, H, W]"""

    def __init__(self, cs, cg):
        super().__init__()
        mid = max(cs // 2, 1)
        self.ws, self.wg = nn.Conv2d(cs, mid, 1), nn.Conv2d(cg, mid, 1)
        self.psi = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(mid, 1, 1), nn.Sigmoid())

    def forward(self, skip, gate):
        return skip * self.psi(self.ws(skip) + self.wg(gate))


class Down(nn.Module):
    """2x2 max-pool, then a block.  [B, cin, H, W] -> [B, cout, H/2, W/2]"""

    def __init__(self, cin, cout, block):
        super().__init__()
        self.pool, self.block = nn.MaxPool2d(2), block(cin, cout)

    def forward(self, x):
        return self.block(self.pool(x))


class Up(nn.Module):
    """Bilinear 2x upsampling, optional attention on the skip, concatenation, then a block.
    x: [B, cin, H/2, W/2], skip: [B, cskip, H, W] -> [B, cout, H, W]"""

    def __init__(self, cin, cskip, cout, block, attention=False):
        super().__init__()
        self.gate = AttentionGate(cskip, cin) if attention else None
        self.block = block(cin + cskip, cout)

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
        if self.gate is not None:
            skip = self.gate(skip, x)
        return self.block(torch.cat([skip, x], 1))


class UNet(nn.Module):
    """Four-level U-Net. width w gives encoder widths w, 2w, 4w, 8w, 8w (bilinear decoder).
    [B, in_ch, H, W] -> [B, 1, H, W] logits"""

    def __init__(self, in_ch=14, width=64, block=DoubleConv, attention=False):
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.inc = block(in_ch, w[0])
        self.downs = nn.ModuleList(Down(w[i], w[i + 1], block) for i in range(4))
        self.ups = nn.ModuleList(Up(w[i + 1], w[i], w[i], block, attention)
                                 for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], 1, 1)
        nn.init.constant_(self.head.bias, -2.0)        # start at p = 0.12: landslides are rare;
        # from p = 0.5 the Lovász hinge sometimes collapses to all-zero logits early on

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)


MODELS = {
    'unet': lambda width: UNet(width=width),
    'resunet': lambda width: UNet(width=width, block=ResBlock),
    'attunet': lambda width: UNet(width=width, attention=True),
}


def build_model(name, width=64):
    """A fresh network by name (see MODELS)."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")
    return MODELS[name](width)


if __name__ == '__main__':
    for name in MODELS:
        m = build_model(name)
        n = sum(p.numel() for p in m.parameters())
        print(f'{name:8s} {n / 1e6:6.2f} M parameters (width 64)')
