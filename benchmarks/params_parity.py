"""Parameter and multiply-add counts of the known architectures vs. the published numbers.

Builds each architecture of ``nao.spaces.known`` at its paper size (and NAONet-A at the
other widths the NAO paper trains), counts parameters without the auxiliary head (the
convention of both official code bases) and multiply-adds of one 32x32 image, and prints
a table with the relative difference to the published count where a primary source gives
one. Run::

    flock /tmp/nao-cpu.lock python benchmarks/params_parity.py
"""

from __future__ import annotations

import argparse
import time

import torch

from nao.nn.network import CellNetwork, NetworkConfig, count_flops, count_parameters, known_cells
from nao.spaces.known import get_known

# (name, channels F, layers N, extra_input_conv, note)
ROWS = [
    ("darts-v2", 36, 6, False, "DARTS paper/README model"),
    ("naonet-ws", 36, 5, False, "our cell network"),
    ("naonet-ws", 36, 5, True, "+ NAO-WS TF child's extra 1x1 on input 1"),
    ("naonet-b", 36, 6, False, "NAO_pytorch NAONet-B-36"),
    ("naonet-a", 36, 6, False, "NAONet-A-36"),
    ("naonet-a", 64, 6, False, "NAONet-A-64"),
    ("naonet-a", 128, 6, False, "NAONet-A-128"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-flops", action="store_true", help="skip the (slow at F=128) multiply-add pass")
    args = parser.parse_args()
    print(f"{'arch':10} {'F':>4} {'N':>2} {'params (M)':>11} {'published':>10} {'diff':>7} {'MAdds (M)':>10}  note")
    for name, c, n, extra, note in ROWS:
        t0 = time.perf_counter()
        normal, reduce = known_cells(name)
        net = CellNetwork(normal, reduce, NetworkConfig(channels=c, layers=n, extra_input_conv=extra))
        params = count_parameters(net) / 1e6
        flops = "" if args.no_flops else f"{count_flops(net) / 1e6:10.1f}"
        k = get_known(name)
        published = k.published_params_m if (c, n) == (k.channels, k.layers) else None
        pub = f"{published:10.3f}" if published else f"{'-':>10}"
        diff = f"{100 * (params - published) / published:+6.1f}%" if published else f"{'':>7}"
        print(f"{name:10} {c:4d} {n:2d} {params:11.3f} {pub} {diff} {flops:>10}  {note} ({time.perf_counter() - t0:.0f}s)")
        del net
    print("published counts:", "; ".join(f"{get_known(n).name}: {get_known(n).params_source}" for n in
                                          ("darts-v2", "naonet-ws", "naonet-a")))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
