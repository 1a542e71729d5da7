"""The paper's refinement with the imagery being mapped as its target domain (§2.3: a network
trained in one region fails in another, and the new region's images are the target). A trained
run's ensemble continues for a few rounds on its own source labels plus pseudo-labelled tiles of
the scene about to be mapped, by refine.run itself: the same loop, its target a split of those
tiles. predict.py --adapt calls it before mapping:

    python predict.py --run runs/demo --s2 PRODUCT.zip --dem dem.tif --out maps --adapt

- The target: up to `tiles` of the scene's 128 x 128 windows with at least half their pixels
  analysed (mapping/patches.py), cut into <out>/<name>_target/TestData. What a window
  could not see (cloud, shadow, snow, no data) is NaN there: out of the statistics, never
  pseudo-labelled, out of AdaBN's statistics. Each scene is its own domain and gets its own
  adapted run; a --before pair is adapted to its after-date, and both dates are then mapped by
  the same adapted networks, so that a change between the maps is one of the ground, not of the
  networks. With --data, the target is the split being predicted.
- The source: the run's own --data (its config.json records it); a synthetic source (the
  shipped model's, a demo run's) is written again from the recipe the run recorded if gone,
  after checking that the synthetic world still draws what the networks saw (a world changed
  since is refused); --source points at it elsewhere.
- Round 0 of the adapted run is the run's round (its checkpoints copied in); each later round
  continues the previous one's networks with the run's own settings. The adapted run is a run
  folder like any other: rerun the command to resume it, or map with it (--run).
- Target labels (--truth, or a split's masks) are cut beside the tiles and score the rounds in
  its metrics.json; they never reach the adaptation.
"""
import argparse
import json
import os
import shutil

import landslide as L
import refine
from mapping import patches, scene as S


def source(run, given=None):
    """The Landslide4Sense root the run trained on, checked before any work. -> (path, whether
    it is a synthetic source that is gone and must be written again). A run trained on a
    synthetic dataset recorded its recipe (config.json's 'synthetic'); the world is checked
    here to still draw what the networks saw, and a changed one refused."""
    cfg = json.load(open(os.path.join(run, 'config.json')))
    path = given or cfg['data']
    if path and os.path.isdir(os.path.join(path, 'TrainData')):
        return os.path.abspath(path), False
    if given is None and cfg.get('synthetic'):
        from synthetic import landscape
        recipe = cfg['synthetic']
        try:
            landscape.check(recipe)
        except ValueError as e:
            raise L.DataError(f'{run}: its synthetic source cannot be written again: {e}; '
                              '--adapt needs the source its networks trained on: the code of '
                              "the run's card, or --source DIR")
        return path, True
    own = os.path.basename(os.path.normpath(cfg['out'] or '.'))    # --demo wrote <out>/data
    if given is None and cfg.get('demo') and (path or '').endswith(os.path.join(own, 'data')):
        return path, True
    what = f'--source {given}' if given else f"{run}: the run's source data {path}"
    raise L.DataError(f'{what}: no TrainData there; adapting needs the labelled source the run '
                      'trained on: point at it with --source DIR')


def settings(run, rnd, src, target_root, split, out, rounds, control, steps, device):
    """The adapted run's settings: the run's own, its target the split, its round 0 the run's
    round rnd, continued (warm start). -> refine's namespace"""
    cfg = json.load(open(os.path.join(run, 'config.json')))
    c = argparse.Namespace(**(refine.DEFAULTS | cfg))
    c.__dict__.update(data=src, target_data=target_root, target=split, out=out, rounds=rounds,
                      control=control, warm_start=True, device=device, demo=False, force=False,
                      paper_rule=False, adapted_from=os.path.join(os.path.abspath(run),
                                                                  f'round{rnd}'))
    if steps:
        c.steps = steps
    return c


def adapt(run, rnd, target_root, split, out, opts, device, log=print):
    """Refine run's round-rnd ensemble with target_root's split as the target domain, into the
    run folder out (resumed when there). opts: rounds, control, steps, source (from source()).
    -> what summary.json records: the adapted run and its label-free signs per round"""
    src, regenerate = opts['source']
    if regenerate:
        src = write_source(run, os.path.join(os.path.dirname(out), 'source'), log)
    c = settings(run, rnd, src, target_root, split, out, opts['rounds'], opts['control'],
                 opts['steps'], device)
    os.makedirs(os.path.join(out, 'round0'), exist_ok=True)
    for f in os.listdir(os.path.join(run, f'round{rnd}')):
        to = os.path.join(out, 'round0', f)
        if f.endswith('.pt') and not os.path.exists(to):
            L.atomic_write(to, lambda t, f=f: shutil.copyfile(
                os.path.join(run, f'round{rnd}', f), t))
    log(f'adapting round {rnd} of {run} to {os.path.join(target_root, L.SPLITS[split])}: '
        f"{opts['rounds']} round(s){' (control: source labels only)' if opts['control'] else ''}")
    metrics = refine.run(c)
    return dict(run=os.path.abspath(out), rounds=opts['rounds'], control=opts['control'],
                tiles=len(os.listdir(os.path.join(target_root, L.SPLITS[split], 'img'))),
                signs=[dict(round=e['round'], pseudo_positive=e['pseudo']['positive'],
                            changed=e['pseudo']['changed'], agreement=e['pseudo']['agreement'],
                            holdout_f1=e['holdout'] and e['holdout']['f1'],
                            target_f1=e['target'] and e['target']['f1'])
                       for e in metrics['rounds']])


def scene_target(run, scene_path, folder, truth, tiles, corrections=S.CORRECT):
    """The scene's analysed tiles as the target split folder/TestData, drawn with the run's seed
    (cut once, then reused), the scene read with the `corrections` asked (scene.CORRECT unless
    told). -> folder"""
    if not os.path.isdir(os.path.join(folder, 'TestData')):
        seed = json.load(open(os.path.join(run, 'config.json')))['seed']
        patches.cut(scene_path, folder, 'test', truth, min_analysed=0.5, most=tiles, seed=seed,
                    corrections=corrections)
    return folder


def write_source(run, folder, log):
    """A run's synthetic source, written again from its recipe, or for a demo run made before
    runs recorded one, from its seed (once, then reused)."""
    if not os.path.isdir(folder):
        cfg = json.load(open(os.path.join(run, 'config.json')))
        log(f"the run's synthetic source is gone: writing it again from its seed into {folder}")
        shutil.rmtree(folder + '.partial', ignore_errors=True)
        if cfg.get('synthetic'):
            from synthetic import landscape
            landscape.rewrite(cfg['synthetic'], folder + '.partial')
        else:
            refine.demo_data(folder + '.partial', cfg['seed'])
        os.replace(folder + '.partial', folder)
    return folder
