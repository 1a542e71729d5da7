"""The evidence and the figures: benchmarks on data anyone can regenerate, each module its own
command. They may use everything; nothing else imports them.

    python -m bench.ablation      what each ingredient of the method adds (round 0)
    python -m bench.refinement    does the refinement beat the same training without pseudo-labels?
    python -m bench.maps          mapped products: --s2 against stacked, clouds, before/after
    python -m bench.speed         training and inference throughput, memory, the Lovász hinge
    python -m bench.scenes        whole scenes mapped, a full-size product stacked: time, memory
    python -m bench.gpu           the GPU path checked and timed (docs/speed.md)
"""
