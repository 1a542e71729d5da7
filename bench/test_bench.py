"""The benchmarks' own logic, checked without training: the refinement table's goals, a table
from finished runs, arms sharing round 0, refusals; the cloud table's scores; and the GPU
check's every part on the CPU.

    python -m pytest -q bench
"""
import json
import os

import numpy as np
import pytest

import landslide as L
from bench import gpu, maps, refinement
from models import MODELS


def test_gpu_check_dry_mode_runs_every_part(tmp_path, capsys):
    rows = dict(gpu.main(['--dry', '--repeats', '1', '--budget', '0', '--json', str(tmp_path / 'g.json')]))
    assert rows['demo run: submission'] == 'valid'
    assert float(rows['Lovász + OHEM vs CPU, largest relative error (values, gradients)']) < 1e-5
    for net in MODELS:
        assert 'img/s' in ' '.join(k for k in rows if k.startswith(net))
        assert rows[f'{net} ours, compiled'].startswith('skipped')
    assert any(k.startswith('paper recipe projected (ours;') for k in rows)
    figures = json.load(open(tmp_path / 'g.json'))
    assert figures['rows'][0][0] == 'demo run: submission' and figures['recipe_minutes'] > 0
    assert '| check | result |' in capsys.readouterr().out


def test_refinement_goals_are_checked_on_the_means():
    res = {'shift': {'default': [{'f1': [0.70, 0.69, 0.80]}, {'f1': [0.70, 0.66, 0.76]}],
                     'control': [{'f1': [0.70, 0.75, 0.77]}] * 2}}
    table = refinement.refinement_table(res)
    assert '| shift | default | 70.0 ± 0.0 | 67.5 ± 2.1 | 78.0 ± 2.8 | 2 |' in table
    assert 'largest fall between rounds 2.5 → MISSED' in table           # 70.0 → 67.5
    assert 'worst seed round 0 → last +6.0 → met' in table
    assert 'gain +8.0, over the control +1.0 → met' in table
    res['shift']['control'] = [{'f1': [0.70, 0.75, 0.79]}] * 2
    res['shift']['default'][1]['f1'][1] = 0.72                          # means 70.0, 70.5, 78.0
    table = refinement.refinement_table(res)
    assert 'no fall between rounds (smallest rise 0.5) → met' in table
    assert 'over the control -1.0 → MISSED' in table


def test_refinement_table_only_reads_finished_runs_in_the_order_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(refinement.refine, 'main', lambda argv: pytest.fail('table_only must not train'))

    def run(arm, seed, f1s):
        rounds = [{'target': {'f1': f}, 'pseudo': {}} for f in f1s]
        (tmp_path / f'{arm}-shift10-seed{seed}').mkdir()
        L.write_json(str(tmp_path / f'{arm}-shift10-seed{seed}' / 'metrics.json'),
                     {'rounds': rounds, 'source_share': 0.02})
    for seed in (0, 1):
        run('default', seed, [0.5, 0.6, 0.7])
        run('control', seed, [0.5, 0.65, 0.75 + 0.01 * seed])
    run('paperrule', 0, [0.5, 0.4])                                     # interrupted after round 1
    refinement.refinement(str(tmp_path), only=['shift 1.0'], seed_list=[0, 1], arms=['control', 'paper rule',
                                                                                     'default'], table_only=True)
    res = json.load(open(tmp_path / 'refinement.json'))['results']['shift 1.0']
    assert list(res) == ['control', 'default']                         # no paper rule: unfinished
    assert [s['f1'][-1] for s in res['control']] == [0.75, 0.76]
    assert 'over the control -5.5' in (tmp_path / 'refinement.md').read_text()
    refinement.refinement(str(tmp_path), only=['shift 1.0'], seed_list=[0], arms=['paper rule'],
                          flags=['--rounds', '1'], table_only=True)                # rounds the flags ask for
    assert json.load(open(tmp_path / 'refinement.json'))['results']['shift 1.0']['paper rule'][0]['f1'] == [0.5, 0.4]
    L.write_json(str(tmp_path / 'control-shift10-seed1' / 'config.json'), vars(refinement.refine.parse_args(
        ['--data', str(tmp_path / 'data-shift10-seed1'), '--width', '16'])))      # made with other flags
    with pytest.raises(L.DataError, match='control-shift10-seed1'):
        refinement.refinement(str(tmp_path), only=['shift 1.0'], seed_list=[1], arms=['control'], table_only=True)


def test_refinement_arms_share_round0_without_the_default(tmp_path, monkeypatch):
    trained = []
    def fake_main(argv):                       # round 0 trained only where no networks were copied in
        run = argv[argv.index('--out') + 1]
        net = os.path.join(run, 'round0', 'unet.pt')
        if not os.path.exists(net):
            trained.append(os.path.basename(run))
            os.makedirs(os.path.dirname(net), exist_ok=True)
            open(net, 'w').write(run)
        L.write_json(os.path.join(run, 'metrics.json'), {'source_share': 0.02, 'rounds': [
            {'target': {'f1': 0.5}, 'pseudo': {}} for _ in range(3)]})
        return 0
    monkeypatch.setattr(refinement, 'synth_once', lambda path, **kw: None)
    monkeypatch.setattr(refinement.refine, 'main', fake_main)
    monkeypatch.setattr(refinement, 'finished', lambda run, argv: None)
    refinement.refinement(str(tmp_path), only=['shift 1.0'], seed_list=[0], arms=['grow', 'control'])
    assert trained == ['grow-shift10-seed0']
    assert (tmp_path / 'control-shift10-seed0/round0/unet.pt').read_text().endswith('grow-shift10-seed0')


def test_refinement_refuses_unknown_arms_and_empty_tables(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:                               # argparse names the choices
        refinement.main(['--out', str(tmp_path), '--arms', 'default', 'paperrule'])
    assert e.value.code == 2 and "invalid choice: 'paperrule'" in capsys.readouterr().err
    assert refinement.main(['--out', str(tmp_path), '--table-only']) == 2
    assert 'no finished run' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []                                  # nothing written


def test_cloud_scores_and_the_cloud_free_products_own_f1():
    truth = np.zeros((4, 6), bool)
    truth[0, :2] = True                                   # two landslide pixels in the clear
    sky = np.zeros((4, 6), np.uint8)
    sky[3] = 1                                            # the bottom row is cloud
    clean = truth.astype(np.uint8)
    clean[1, 0] = 1                                       # one false landslide on a clear map
    clean[2, 5] = 255                                     # no data
    cloudy = clean.copy()
    cloudy[3, :3], cloudy[3, 3:] = 1, 254                 # half the cloud called landslide
    cloudy[1, 5] = 254                                    # one clear pixel lost
    s = maps.cloud_scores(cloudy, clean, truth, sky)
    assert s['on_cloud'] == 50.0 and s['clear_lost'] == pytest.approx(100 / 17)
    assert s['f1_cloudy'] == s['f1_clean'] == pytest.approx(80.0) and s['f1_ratio'] == 1.0
    free = maps.free_scores(clean, truth)                 # 2 TP, 1 FP over its 23 data pixels
    assert free['f1_clean'] == pytest.approx(80.0) and free['on_cloud'] != free['on_cloud']
    table = maps.cloud_table({('L1C', 0.0, 'cloud-free product'): [free],
                              ('L1C', 0.3, 'fringe 1'): [s]})
    assert '| L1C | 0.0 | cloud-free product | – | – | – | – | – | – | 80.00 | – |' in table
    assert '| L1C | 0.3 | fringe 1 | 50.00 |' in table


# ----------------------------------------------------------------------------- the real world

def test_components_are_8_connected_and_unique_over_the_batch():
    from bench import real
    m = np.zeros((2, 8, 8), np.uint8)
    m[0, 1, 1] = m[0, 2, 2] = 1                       # diagonal neighbours: one object
    m[0, 5:7, 5:8] = 1                                # a second
    m[1, 0, :] = 1                                    # the second image's own
    lab = real.components(m)
    assert lab[0, 1, 1] == lab[0, 2, 2] != lab[0, 5, 5]
    assert len(np.unique(lab[lab > 0])) == 3 and (lab[m == 0] == 0).all()


def test_render_divides_by_the_release_divisor_and_scales_each_image_to_255():
    from bench import real
    img = np.zeros((1, 4, 4, 14))
    img[..., 3], img[..., 2], img[..., 1] = 0.0445, 0.0663, 0.0825   # each band at its divisor
    img[0, 0, 0, 3] = 0.089                                            # one pixel twice as red
    rgb = real.render(img)
    assert rgb.max() == 255 and rgb[0, 0, 0, 0] == 255
    assert (rgb[0, 1:, :, 0] == 128).all() and (rgb[0, 1:, :, 2] == 128).all()


def test_mask_statistics_of_a_known_mask():
    from bench import realism
    m = np.zeros((2, 128, 128), np.uint8)
    m[0, 10:13, 20:30] = 1                            # 3 x 10: area 30, elongated
    stats = realism.mask_stats(m)
    assert stats['patches with a landslide %'] == 50
    assert stats['object area px, median'] == 30
    assert 2.5 < stats['elongation, median (objects >= 5 px)'] < 3.5


def test_realism_without_the_development_set_has_the_band_rows_only(tmp_path, monkeypatch):
    from bench import real, realism
    monkeypatch.setattr(real, 'DEFAULT', str(tmp_path / 'absent.npz'))
    text = realism.table(['v1', 'v2'], n=4)
    assert '| B4 mean | 0.0427 |' in text and 'object area' not in text
    img, mask = realism.world_sample('v2', 6, 1)
    rgb = real.render(img)
    np.savez(tmp_path / 'dev.npz', rgb=rgb, mask=mask, l4s_id=np.arange(6))
    text = realism.table(['v2'], n=4, real_path=str(tmp_path / 'dev.npz'))
    assert 'object area px, median' in text and 'B4 landslide / background' in text


def test_sim2real_skips_cleanly_without_the_development_set(tmp_path, monkeypatch, capsys):
    from bench import real, sim2real
    monkeypatch.setattr(real, 'DEFAULT', str(tmp_path / 'absent.npz'))
    assert sim2real.main(['--out', str(tmp_path / 'out')]) == 0
    assert 'skipped' in capsys.readouterr().out and not (tmp_path / 'out').exists()


def test_sim2real_writes_renderings_as_three_band_patches(tmp_path):
    from bench import sim2real
    rgb = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    mask = np.zeros((3, 128, 128), np.uint8)
    root = sim2real.write_patches(str(tmp_path), 'test', rgb, mask)
    x = L.read_image(os.path.join(root, 'TestData', 'img', 'image_2.h5'))
    assert np.allclose(x[..., 3] * 255, rgb[1, ..., 0]) and np.allclose(x[..., 1] * 255, rgb[1, ..., 2])
    assert not x[..., [0, *range(4, 14)]].any()
