"""Tests: the refinement loop end to end, the target's share of a batch, AdaBN, bad input and
interrupted runs (the pseudo-label rules: test_pseudo.py).

    python -m pytest -q
"""
import json
import os
import re
import shutil
import zipfile
from xml.etree import ElementTree

import h5py
import numpy as np
import pytest
import torch

import landslide as L
import pseudo
import refine
from models import build_model

from conftest import TINY, outputs, tree_digest


# ----------------------------------------------------------------------------- the loop

def toy_pools(n_s, n_t):
    """refine's data dict with n_s source patches (all landslide) and n_t target patches whose
    DEM band is 7, which augmentation never touches: a drawn patch tells which pool it came from."""
    return {'train_idx': torch.arange(n_s), 'xs': torch.zeros(n_s, 14, 128, 128),
            'ys': torch.ones(n_s, 128, 128, dtype=torch.uint8), 'xt': torch.full((n_t, 14, 128, 128), 7.0)}


def test_no_labels_rule_keeps_target_patches_in_the_batches_with_every_pixel_ignored():
    """--pseudo none (an ablation): the target patches still take their share of each batch, as
    with pseudo-labels, but every pixel of them is ignored; --control leaves them out."""
    c = refine.parse_args(['--demo', '--pseudo', 'none', '--batch-size', '16', '--scale', '1'])
    prob = torch.rand(3, 128, 128)
    y_t, _ = pseudo.make(prob, 1, c, 0.02)
    assert y_t.shape == prob.shape and bool((y_t == L.IGNORE).all())
    D = toy_pools(4, 3)
    for control in (False, True):
        c.control = control
        x, y = refine.sample_batch(D, y_t, c, torch.Generator().manual_seed(0), torch.device('cpu'))
        is_t = x[:, 13].flatten(1).eq(7).all(1)
        assert bool(is_t.any()) != control                         # 3 of 7 patches are target: some drawn
        assert bool((y[is_t] == L.IGNORE).all()) and bool((y[~is_t] == 1).all())


def test_target_share_by_count_is_capped_so_pseudo_labels_never_outnumber_the_source():
    """9 target patches beside 3 source ones: by count 75 % of each batch would be target; the
    default cap keeps it at 50 %, --paper-rule (cap 1) pools by count."""
    D = toy_pools(3, 9)
    y_t = torch.zeros(9, 128, 128, dtype=torch.uint8)
    for argv, share in (([], 0.5), (['--paper-rule'], 0.75), (['--target-cap', '0.2'], 0.2)):
        c = refine.parse_args(['--demo', '--batch-size', '50', '--scale', '1', *argv])
        g = torch.Generator().manual_seed(0)
        n_t = sum(int(refine.sample_batch(D, y_t, c, g, torch.device('cpu'))[0][:, 13].flatten(1).eq(7).all(1).sum())
                  for _ in range(8))
        assert abs(n_t / 400 - share) < 0.07, (argv, n_t)


def test_adabn_takes_the_batchnorm_statistics_from_the_images_given():
    torch.manual_seed(0)
    model = build_model('unet', 4).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    c = refine.parse_args(['--demo', '--batch-size', '2', '--scale', '1'])
    X = 3 * torch.randn(8, 14, 128, 128) + 5                      # another domain: 2 batches of 4
    (adapted,) = refine.adapt_bn([model], [X[:4], X[4:]], c, torch.device('cpu'))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    bn = next(m for m in adapted.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        assert torch.allclose(bn.running_mean, conv(X).mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    after = adapted.state_dict()
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)   # the original is untouched
    assert all(torch.equal(before[k], after[k]) for k in before if 'running' not in k and 'tracked' not in k)
    assert not torch.allclose(before[[k for k in before if k.endswith('running_mean')][0]],
                              after[[k for k in after if k.endswith('running_mean')][0]])
    assert refine.adapt_bn([model], [], c, torch.device('cpu'))[0] is model     # nothing seen: unchanged


def test_paper_rule_is_one_flag_away():
    d, p = refine.parse_args([]), refine.parse_args(['--paper-rule'])
    assert (d.pseudo, d.warm_start, d.adabn) == ('guarded', True, True)
    assert (p.pseudo, p.warm_start, p.adabn, p.target_cap) == ('threshold', False, False, 1.0)
    assert refine.parse_args(['--paper-rule', '--warm-start']).warm_start        # a flag given still wins


def conv_weights(path):
    sd = torch.load(path, weights_only=True)['state_dict']
    return {k: v for k, v in sd.items() if k.endswith('weight') and v.dim() == 4}


@pytest.mark.parametrize('warm', [True, False])
def test_warm_start_continues_from_the_previous_round(warm, tiny, tmp_path):
    out = tmp_path / 'run'
    assert run_refine(tiny, out, '--lr', '1e-9', '--warm-start' if warm else '--no-warm-start') == 0
    a, b = conv_weights(out / 'round0' / 'unet.pt'), conv_weights(out / 'round1' / 'unet.pt')
    same = all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert same == warm


def test_control_rounds_never_see_the_target(tiny, tmp_path):
    """With --control, round 1 trains on the source only: other target images, same weights
    (without it, the target images are in the batches and the weights differ)."""
    other = tmp_path / 'other'
    shutil.copytree(tiny, other)
    for p in L.list_split(str(other), 'test')[1]:
        with h5py.File(p, 'r+') as f:
            f['img'][...] = f['img'][()][::-1] * 1.3 + 0.01
    for control, same in ((['--control'], True), ([], False)):
        ckpts = []
        for data in (tiny, str(other)):
            out = tmp_path / 'runs' / (os.path.basename(data) + str(same))
            assert run_refine(data, out, *control) == 0
            ckpts.append(outputs(out / 'round1'))
        assert all(ckpts[0][k] == ckpts[1][k] for k in ckpts[0] if k.endswith('.pt')) == same


def run_refine(tiny, out, *extra):
    return refine.main(['--data', tiny, '--out', str(out), '--rounds', '1', *TINY, *extra])


def test_end_to_end_submission(tiny, tmp_path):
    before = tree_digest(tiny)
    assert run_refine(tiny, tmp_path / 'run') == 0
    assert tree_digest(tiny) == before                              # data directory untouched
    ids = L.list_split(tiny, 'test')[0]
    with zipfile.ZipFile(tmp_path / 'run/submission.zip') as z:
        assert sorted(z.namelist()) == sorted(f'mask_{n}.h5' for n in ids)
        z.extractall(tmp_path / 'sub')
    for n in ids:
        with h5py.File(tmp_path / f'sub/mask_{n}.h5') as f:
            m = f['mask'][()]
        assert m.shape == (128, 128) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    metrics = json.load(open(tmp_path / 'run/metrics.json'))
    assert [e['round'] for e in metrics['rounds']] == [0, 1]
    r1 = metrics['rounds'][1]
    assert r1['target'] is not None and 0 <= r1['pseudo']['changed'] <= 1
    assert all(isinstance(e['pseudo']['ceiling'], bool) for e in metrics['rounds'])   # the default's ceiling, recorded
    report = open(tmp_path / 'run/report.md').read()
    pictures = re.findall(r'\]\((\w+\.png)\)', report)
    assert len(pictures) >= 2
    assert all(open(tmp_path / 'run' / p, 'rb').read(8) == b'\x89PNG\r\n\x1a\n' for p in pictures)
    charts = re.findall(r'\]\((\w+\.svg)\)', report)
    assert sorted(charts) == ['bands.svg', 'rounds.svg']
    for chart in charts:                                          # well-formed, with text on it
        root = ElementTree.parse(tmp_path / 'run' / chart).getroot()
        texts = [e.text for e in root.iter('{http://www.w3.org/2000/svg}text')]
        assert root.tag.endswith('svg') and len(texts) > 10
    texts = ' '.join(e.text for e in ElementTree.parse(tmp_path / 'run' / 'bands.svg').getroot().iter() if e.text)
    assert all(w in texts for w in ('B1', 'B12', 'slope', 'DEM', 'source (TrainData)', 'target (TestData)'))
    texts = ' '.join(e.text for e in ElementTree.parse(tmp_path / 'run' / 'rounds.svg').getroot().iter() if e.text)
    assert all(w in texts for w in ('held-out F1', 'target F1', 'pseudo-labelled landslide', 'round'))
    for r in (0, 1):
        assert sorted(os.listdir(tmp_path / f'run/round{r}/pseudo')) == sorted(f'mask_{n}.h5' for n in ids)
        ck = torch.load(tmp_path / f'run/round{r}/unet.pt', weights_only=True)
        assert ck['config'] == {'name': 'unet', 'width': 4}


def test_submission_keeps_the_numbers_as_written(tiny, tmp_path):
    d = copy_data(tiny, tmp_path)
    for sub, stem in (('img', 'image'), ('mask', 'mask')):
        for f in os.listdir(d / 'TestData' / sub):
            n = int(f[len(stem) + 1:-3])
            os.rename(d / 'TestData' / sub / f, d / 'TestData' / sub / f'{stem}_{n:04d}.h5')
    assert run_refine(str(d), tmp_path / 'run', '--rounds', '0', '--models', 'unet') == 0
    with zipfile.ZipFile(tmp_path / 'run/submission.zip') as z:
        assert sorted(z.namelist()) == sorted(f.replace('image', 'mask') for f in os.listdir(d / 'TestData/img'))
        assert all(n.startswith('mask_000') for n in z.namelist())


def test_target_labels_never_steer_training(tiny, tmp_path):
    """Same run on data whose target masks are removed: same pseudo-labels, same checkpoints."""
    other = tmp_path / 'nolabels'
    os.system(f"cp -r {tiny} {other} && rm -r {other}/TestData/mask")
    assert run_refine(tiny, tmp_path / 'a', '--models', 'unet') == 0
    assert run_refine(str(other), tmp_path / 'b', '--models', 'unet') == 0
    assert tree_digest(tmp_path / 'a/round1/pseudo') == tree_digest(tmp_path / 'b/round1/pseudo')
    sa = torch.load(tmp_path / 'a/round1/unet.pt', weights_only=True)['state_dict']
    sb = torch.load(tmp_path / 'b/round1/unet.pt', weights_only=True)['state_dict']
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.load(open(tmp_path / 'b/metrics.json'))['rounds'][1]['target'] is None


def test_target_data_takes_the_target_from_another_root_and_never_labels_what_it_cannot_see(
        tiny, tmp_path):
    """--target-data: the same split in another root gives the same run; a split whose patches
    hold NaN (not analysed, as mapping/patches.py writes them) leaves those pixels ignored."""
    other = tmp_path / 'other'
    shutil.copytree(os.path.join(tiny, 'TestData'), other / 'TestData')
    assert run_refine(tiny, tmp_path / 'a', '--models', 'unet') == 0
    assert run_refine(tiny, tmp_path / 'b', '--models', 'unet', '--target-data', str(other)) == 0
    assert tree_digest(tmp_path / 'a/round1/pseudo') == tree_digest(tmp_path / 'b/round1/pseudo')
    sa, sb = (torch.load(tmp_path / f'{r}/round1/unet.pt', weights_only=True)['state_dict']
              for r in 'ab')
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    for f in os.listdir(other / 'TestData' / 'img'):            # a cloud over every left half
        p = other / 'TestData' / 'img' / f
        img = L.read_image(str(p))
        img[:, :64, :12] = np.nan
        with h5py.File(p, 'w') as h:
            h.create_dataset('img', data=img)
    assert run_refine(tiny, tmp_path / 'c', '--models', 'unet', '--target-data', str(other)) == 0
    for r in (0, 1):
        for f in os.listdir(tmp_path / f'c/round{r}/pseudo'):
            with h5py.File(tmp_path / f'c/round{r}/pseudo' / f) as h:
                y = h['mask'][()]
            assert (y[:, :64] == L.IGNORE).all() and (y[:, 64:] != L.IGNORE).any()
    assert run_refine(tiny, tmp_path / 'd', '--target-data', str(tmp_path / 'none')) == 2


# ----------------------------------------------------------------------------- bad input

def copy_data(tiny, tmp_path):
    dst = tmp_path / 'data'
    os.system(f'cp -r {tiny} {dst}')
    return dst


def write_h5(path, key, arr):
    with h5py.File(path, 'w') as f:
        f[key] = arr


def truncate(path):
    raw = open(path, 'rb').read()
    open(path, 'wb').write(raw[:len(raw) // 2])


BREAKS = {  # how the data is broken -> what the one-line message must contain
    'image without mask': (lambda d: os.remove(d / 'TrainData/mask/mask_3.h5'), 'TrainData/mask/mask_3.h5'),
    'mask without image': (lambda d: os.remove(d / 'TestData/img/image_2.h5'), 'TestData/mask/mask_2.h5'),
    'band count': (lambda d: write_h5(d / 'TrainData/img/image_5.h5', 'img', np.zeros((128, 128, 13), np.float32)),
                   'image_5.h5'),
    'size': (lambda d: write_h5(d / 'TestData/img/image_1.h5', 'img', np.zeros((64, 64, 14), np.float32)),
             'image_1.h5'),
    'key': (lambda d: write_h5(d / 'TrainData/img/image_2.h5', 'data', np.zeros((128, 128, 14), np.float32)),
            "image_2.h5: no dataset 'img'"),
    'truncated': (lambda d: truncate(d / 'TrainData/img/image_4.h5'), 'image_4.h5'),
    'garbage': (lambda d: open(d / 'TrainData/mask/mask_1.h5', 'wb').write(b'not hdf5' * 100), 'mask_1.h5'),
    'mask values': (lambda d: write_h5(d / 'TrainData/mask/mask_6.h5', 'mask', np.full((128, 128), 2, np.uint8)),
                    'mask_6.h5: mask values must be 0 or 1'),
    'no TrainData': (lambda d: os.system(f"rm -r {d / 'TrainData'}"), 'TrainData/img: folder not found'),
    'no target split': (lambda d: os.system(f"rm -r {d / 'TestData'}"), 'TestData/img: folder not found'),
}


@pytest.mark.parametrize('case', list(BREAKS))
def test_bad_data_one_line_nothing_written(case, tiny, tmp_path, capsys):
    d = copy_data(tiny, tmp_path)
    breaker, expected = BREAKS[case]
    breaker(d)
    digest = tree_digest(d)
    assert run_refine(str(d), tmp_path / 'out') == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and '\n' not in err and expected in err
    assert not (tmp_path / 'out').exists() and tree_digest(d) == digest


@pytest.mark.parametrize('flags, expected', [
    (['--rounds', '-1'], '--rounds'), (['--scale', '0'], '--scale'),
    (['--sky', '1.5', '0'], '--sky shares must be in [0, 1], got 1.5 0'),
    (['--sky', '0', '-0.1'], '--sky shares must be in [0, 1], got 0 -0.1'),
    (['--models', 'unet,segformer'], 'unknown model segformer'), (['--holdout', '1'], '--holdout')])
def test_nonsensical_flags_refused(flags, expected, tiny, tmp_path, capsys):
    assert run_refine(tiny, tmp_path / 'out', *flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and '\n' not in err and expected in err
    assert not (tmp_path / 'out').exists()


def test_out_inside_data_or_unwritable_refused(tiny, tmp_path, capsys):
    assert run_refine(tiny, os.path.join(tiny, 'runs')) == 2
    assert 'must not be inside --data' in capsys.readouterr().err
    (tmp_path / 'file').write_text('x')
    assert run_refine(tiny, tmp_path / 'file/run') == 2
    assert 'cannot create the run folder' in capsys.readouterr().err
    assert refine.main(['--data', str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'o')]) == 2
    assert 'nowhere: --data folder not found' in capsys.readouterr().err
    assert not os.path.exists(os.path.join(tiny, 'runs')) and not (tmp_path / 'o').exists()


def test_bad_input_exits_nonzero_without_traceback(tiny, tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, 'refine.py', '--data', tiny, '--out', str(tmp_path / 'o'),
                        '--scale', '0'], capture_output=True, text=True, cwd=os.path.dirname(refine.__file__))
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr


def test_nonfinite_pixels_filled_counted_reported(tiny, tmp_path, capsys):
    d = copy_data(tiny, tmp_path)
    img = L.read_image(str(d / 'TestData/img/image_3.h5'))
    img[:2, :5, 13] = np.nan
    img[7, 7, 4] = -np.inf
    write_h5(d / 'TestData/img/image_3.h5', 'img', img)
    assert run_refine(str(d), tmp_path / 'out', '--rounds', '0') == 0
    assert 'TestData holds 11 NaN/Inf values' in capsys.readouterr().out
    assert json.load(open(tmp_path / 'out/metrics.json'))['nonfinite']['test'] == 11


# ----------------------------------------------------------------------------- interrupted runs

KILLER = '''
import os, signal, sys
import torch
import landslide as L, refine
where, n = sys.argv[1], int(sys.argv[2])
calls = [0]
def die_on_call(fn, n, half_written=None):
    def wrapped(*a, **k):
        calls[0] += 1
        if calls[0] < n:
            return fn(*a, **k)
        if half_written is not None:                       # leave half a file behind, then die
            fn(*a, **k)
            path = a[half_written]
            open(path, 'r+b').truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    return wrapped
if where == 'step':
    refine.segmentation_loss = die_on_call(refine.segmentation_loss, n)
elif where == 'checkpoint':
    torch.save = die_on_call(torch.save, n, half_written=1)
elif where == 'mask':
    L.write_mask = die_on_call(L.write_mask, n, half_written=0)
sys.exit(refine.main(sys.argv[3:]))
'''


@pytest.fixture(scope='module')
def reference(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp('ref') / 'run'
    assert run_refine(tiny, out) == 0
    return outputs(out)


@pytest.mark.parametrize('where, n', [('step', 5), ('checkpoint', 4), ('mask', 15)])
def test_killed_run_resumes_to_the_same_files(where, n, tiny, tmp_path, reference):
    import subprocess
    import sys
    out = tmp_path / 'run'
    args = ['--data', tiny, '--out', str(out), '--rounds', '1', *TINY]
    r = subprocess.run([sys.executable, '-c', KILLER, where, str(n), *args],
                       cwd=os.path.dirname(os.path.abspath(refine.__file__)), capture_output=True)
    assert r.returncode == -9 and not (out / 'submission.zip').exists()
    assert refine.main(args) == 0
    assert outputs(out) == reference


def test_changed_command_refused_unless_forced(tiny, tmp_path, capsys):
    assert run_refine(tiny, tmp_path / 'run', '--rounds', '0') == 0
    assert run_refine(tiny, tmp_path / 'run', '--rounds', '0', '--lr', '0.01') == 2
    assert 'differs in: --lr' in capsys.readouterr().err
    assert run_refine(tiny, tmp_path / 'run', '--rounds', '0', '--lr', '0.01', '--force') == 0
    assert json.load(open(tmp_path / 'run/config.json'))['lr'] == 0.01


def test_a_run_older_than_a_setting_resumes_with_it_off_and_not_with_it_on(tiny, tmp_path,
                                                                           capsys):
    assert run_refine(tiny, tmp_path / 'run', '--rounds', '0') == 0
    cpath = tmp_path / 'run/config.json'
    cfg = json.load(open(cpath))
    del cfg['shade']                                      # as a run made before shade was
    cpath.write_text(json.dumps(cfg))
    assert run_refine(tiny, tmp_path / 'run', '--rounds', '0') == 0
    assert run_refine(tiny, tmp_path / 'run', '--rounds', '0', '--sky', '0', '0.5') == 2
    assert 'differs in: --sky)' in capsys.readouterr().err


def test_adabn_on_tiles_partly_under_a_cloud_takes_statistics_where_they_could_see():
    torch.manual_seed(0)
    model = build_model('unet', 4).eval()
    c = refine.parse_args(['--demo', '--batch-size', '2', '--scale', '1'])
    X = 3 * torch.randn(4, 14, 128, 128) + 5
    valid = torch.ones(4, 128, 128, dtype=torch.bool)
    valid[:, :, 64:] = False                                     # the right half under a cloud
    cloudy = X.clone()
    cloudy[:, :, :, 64:] = 0.0                                   # as mapping feeds a cloud: the mean
    (masked,) = refine.adapt_bn([model], [(cloudy, valid)], c, torch.device('cpu'))
    (filled,) = refine.adapt_bn([model], [cloudy], c, torch.device('cpu'))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    bn, bn_filled = (next(m for m in n.modules() if isinstance(m, torch.nn.BatchNorm2d))
                     for n in (masked, filled))
    with torch.no_grad():
        seen = conv(cloudy)[..., :64]
        assert torch.allclose(bn.running_mean, seen.mean((0, 2, 3)), atol=1e-4)
        assert torch.allclose(bn.running_var, seen.var((0, 2, 3)), rtol=1e-3)   # unbiased, as BN's
    assert not torch.allclose(bn.running_var, bn_filled.running_var, rtol=0.05)   # zeros count there
    (whole,) = refine.adapt_bn([model], [(X, torch.ones(4, 128, 128, dtype=torch.bool))], c,
                               torch.device('cpu'))
    (plain,) = refine.adapt_bn([model], [X], c, torch.device('cpu'))
    for a, b in zip(whole.modules(), plain.modules()):          # all valid: AdaBN as before
        if isinstance(a, torch.nn.BatchNorm2d):
            assert torch.allclose(a.running_mean, b.running_mean, rtol=1e-3, atol=1e-4)
            assert torch.allclose(a.running_var, b.running_var, rtol=1e-3, atol=1e-4)


def test_report_of_a_run_with_target_labels_puts_the_control_beside_it(tmp_path):
    import report
    out = str(tmp_path / 'run')
    os.makedirs(out)
    rounds = [{'round': r, 'target': {'f1': f}} for r, f in ((0, 0.6), (1, 0.7))]
    text = '\n'.join(report.control_lines(out, {'rounds': rounds}))
    assert '--control --out run-control' in text and 'cp run/round0/*.pt run-control/round0/' in text
    os.makedirs(out + '-control')
    json.dump({'rounds': [{'round': 0, 'target': {'f1': 0.6}}, {'round': 1, 'target': {'f1': 0.75}}]},
              open(out + '-control/metrics.json', 'w'))
    text = '\n'.join(report.control_lines(out, {'rounds': rounds}))
    assert '| 1 | 70.00 | 75.00 |' in text and 'refine.py' not in text and 'run-control' in text
    json.dump({'control': True}, open(os.path.join(out, 'config.json'), 'w'))
    assert report.control_lines(out, {'rounds': rounds}) == []          # a control needs none
    assert report.control_lines(str(tmp_path / 'x'), {'rounds': [{'round': 0, 'target': None}]}) == []
