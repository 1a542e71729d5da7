"""A trained run packed as a model to ship with the code: one round's networks in float16 (half
the bytes, the same maps to within float16's rounding), its settings, its band statistics, the
metrics of the rounds up to it, and nothing of its data, masks or earlier rounds. The packed
folder is a run folder predict.py maps with (--run) and adapts (--adapt: a synthetic source is
written again from the recipe its config.json keeps). pretrained/ holds the one this repository
ships, made this way; its MODEL_CARD.md says how it was trained.

    python -m mapping pack RUN OUT [--round K] [--steps N]

--steps sets how long each round of an adaptation of the packed model trains (config.json's
steps, what predict.py --adapt continues with unless --adapt-steps says otherwise); the run's
own training length is kept beside it, in packed_from.
"""
import json
import os
import shutil

import torch

import landslide as L


def pack(run, out, rnd=None, steps=None):
    """Pack round rnd (default: the last finished) of the run folder run into out, written aside
    and renamed; steps: the packed model's steps per round of an adaptation [default: the
    run's]. -> out"""
    try:
        cfg = json.load(open(os.path.join(run, 'config.json')))
        metrics = json.load(open(os.path.join(run, 'metrics.json')))
    except OSError as e:
        raise L.DataError(f'{run}: not a finished run folder ({e.strerror}: {e.filename})')
    rounds = [e['round'] for e in metrics.get('rounds', [])]
    rnd = max(rounds, default=None) if rnd is None else rnd
    if rnd not in rounds:
        raise L.DataError(f'{run}: metrics.json does not list round {rnd}: not finished')
    if os.path.exists(out):
        raise L.DataError(f'{out}: already there (packing never overwrites)')
    part = out.rstrip('/') + '.partial'
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(os.path.join(part, 'round0'))
    for name in [m for m in cfg['models'].split(',') if m]:
        ck = torch.load(os.path.join(run, f'round{rnd}', f'{name}.pt'), map_location='cpu',
                        weights_only=True)
        ck['state_dict'] = {k: v.half() if v.is_floating_point() else v
                            for k, v in ck['state_dict'].items()}
        torch.save(ck, os.path.join(part, 'round0', f'{name}.pt'))
    entry = next(e for e in metrics['rounds'] if e['round'] == rnd)
    kept = {k: metrics[k] for k in ('source_share', 'nonfinite', 'target') if k in metrics}
    L.write_json(os.path.join(part, 'metrics.json'),
                 kept | {'rounds': [entry | {'round': 0, 'packed_from_round': rnd}]})
    # where the run's data lay means nothing elsewhere: the source is written again from its
    # recipe when --adapt needs it
    cfg |= {'data': None, 'target_data': None, 'out': None, 'rounds': 0,
            'packed_from': {'round': rnd, 'data': os.path.basename(os.path.normpath(cfg['data'])),
                            'steps': cfg['steps'],
                            'epochs': cfg['epochs']}}
    if steps:
        cfg['steps'] = steps
    L.write_json(os.path.join(part, 'config.json'), cfg)
    shutil.copy(os.path.join(run, 'stats.json'), os.path.join(part, 'stats.json'))
    os.replace(part, out)
    return out
