"""Where each map came from, as Copernicus EMS delineation products state it: the imagery (its
id, platform, sensing time, processing level and baseline, tile), the DEM, the model (run folder,
round, its card) and the software (the git commit where there is one). predict.py records it in
summary.json ('input', 'dem', 'model', 'software') and in the map GeoTIFFs' tags (SOURCE_*,
MODEL_*, SOFTWARE), so a map that leaves its folder still says what it was made from.
"""
import os
import re
import subprocess

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def of_input(pr):
    """What a product dict (sentinel2.open_product's) says of the imagery. -> dict"""
    if pr.get('provenance'):                      # a STAC item or a folder (stac.py)
        return dict(pr['provenance'], radiometry=pr.get('radiometry'))
    name = pr['name']
    base = re.search(r'_N(\d\d)(\d\d)_', name)
    tile = re.search(r'_T(\d\d[A-Z]{3})_', name + '_')
    sat = re.match(r'S2([A-D])_', name)
    return dict(kind='.zip product' if pr['path'].lower().endswith('.zip') else '.SAFE product',
                id=name, platform=sat and f'Sentinel-2{sat.group(1)}', sensed=pr['sensed'],
                level=pr['level'], baseline=base and f'{base.group(1)}.{base.group(2)}',
                tile=tile and tile.group(1))


def of_model(run, rnd):
    """The run folder, the round mapped with and its model card where it has one. -> dict"""
    card = os.path.join(run, 'MODEL_CARD.md')
    return dict(run=os.path.abspath(run), round=rnd,
                card=os.path.abspath(card) if os.path.isfile(card) else None)


def software():
    """'git <commit>[ (modified)]' of this code where it is a git checkout, else 'unknown'."""
    try:
        head = subprocess.run(['git', '-C', HERE, 'rev-parse', 'HEAD'], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(['git', '-C', HERE, 'status', '--porcelain', '--untracked-files=no'],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
    if head.returncode:
        return 'unknown'
    return f"git {head.stdout.strip()}{' (modified)' if dirty.stdout.strip() else ''}"


def record(pr, dem, run, rnd, area=None):
    """Everything above for one map (area: aoi.read's, where one was given).
    -> dict(input, dem, model, software)"""
    inp = of_input(pr) | ({'aoi': area['name']} if area else {})
    return dict(input=inp, dem=dem and os.path.abspath(dem), model=of_model(run, rnd),
                software=software())


def tags(rec):
    """The record as GeoTIFF tags (text; what is unknown left out). -> {name: str}"""
    inp, model = rec['input'], rec['model']
    keys = ('kind', 'id', 'platform', 'sensed', 'level', 'baseline', 'tile', 'grid', 'aoi')
    out = {f'SOURCE_{k.upper()}': inp[k] for k in keys if inp.get(k)}
    out |= {'SOURCE_DEM': rec['dem'], 'MODEL_RUN': model['run'], 'MODEL_ROUND': model['round'],
            'MODEL_CARD': model['card'], 'SOFTWARE': rec['software']}
    return {k: str(v) for k, v in out.items() if v is not None}
