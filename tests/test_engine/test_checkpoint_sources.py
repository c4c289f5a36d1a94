"""A run reads only its own checkpoints: resume looks in the work dir it was given (not
where a copied `last_checkpoint` points), and a download is cached by its whole URL
(two URLs ending in the same file name never share a copy); a URL that cannot be
fetched is one line."""
import os
import shutil
from urllib.error import HTTPError, URLError

import pytest
import torch

from mmreplk.engine import latest_checkpoint
from mmreplk.engine.checkpoint import checkpoint_folder
from mmreplk.errors import CheckpointError, CheckpointNotFoundError
from mmreplk.utils import download_checkpoint, load_checkpoint_file


def _run_dir(folder, iters):
    folder.mkdir(parents=True)
    for i in iters:
        torch.save({'state_dict': {'w': torch.tensor(float(i))}}, folder / f'iter_{i}.pth')
    if iters:
        (folder / 'last_checkpoint').write_text(str(folder / f'iter_{max(iters)}.pth'))


@pytest.mark.parametrize('copied_iters, other_iters', [([2], [2, 4]), ([2, 4], [6]),
                                                         ([], [4])])
def test_a_copied_work_dir_resumes_from_its_own_files(tmp_path, copied_iters, other_iters):
    """A work dir copied from another run keeps that run's ``last_checkpoint``, naming
    the other folder, whose newer checkpoints are not this run's."""
    _run_dir(tmp_path / 'other_run', other_iters)
    _run_dir(tmp_path / 'copy', copied_iters)
    shutil.copy(tmp_path / 'other_run' / 'last_checkpoint', tmp_path / 'copy')
    found = latest_checkpoint(str(tmp_path / 'copy'))
    if copied_iters:
        assert found == str(tmp_path / 'copy' / f'iter_{max(copied_iters)}.pth')
    else:
        assert found is None  # the pointer names the other run: not read


def test_an_out_dir_is_searched_as_mmengine_places_it(tmp_path):
    assert checkpoint_folder('w/run1', None) == 'w/run1'
    assert checkpoint_folder('w/run1', 'ckpts') == os.path.join('ckpts', 'run1')
    _run_dir(tmp_path / 'ckpts' / 'run1', [3])
    (tmp_path / 'run1').mkdir()
    assert latest_checkpoint(str(tmp_path / 'run1'), str(tmp_path / 'ckpts')) == \
        str(tmp_path / 'ckpts' / 'run1' / 'iter_3.pth')


def test_two_urls_with_one_file_name_are_two_downloads(tmp_path, monkeypatch):
    def fake_download(url, dst, progress=True):
        torch.save({'state_dict': {'from': torch.tensor(len(url))}}, dst)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    a = download_checkpoint('https://host/a/model.pth', str(tmp_path))
    b = download_checkpoint('https://host/bb/model.pth', str(tmp_path))
    assert a != b and a.endswith('-model.pth') and b.endswith('-model.pth')
    assert load_checkpoint_file(a)['state_dict']['from'] == len('https://host/a/model.pth')
    assert load_checkpoint_file(b)['state_dict']['from'] == len('https://host/bb/model.pth')
    assert download_checkpoint('https://host/a/model.pth', str(tmp_path)) == a  # cached


@pytest.mark.parametrize('error, kind, message', [
    (HTTPError('u', 404, 'Not Found', {}, None), CheckpointNotFoundError, 'HTTP 404'),
    (HTTPError('u', 500, 'Server Error', {}, None), CheckpointError, 'HTTP 500'),
    (URLError('Name or service not known'), CheckpointError,
     'Name or service not known .no network'),
])
def test_a_url_that_cannot_be_fetched_is_one_line(tmp_path, monkeypatch, error, kind,
                                                   message):
    def fail(url, dst, progress=True):
        raise error
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fail)
    with pytest.raises(kind, match=f'could not download checkpoint https://h/m.pth: '
                       f'{message}'):
        download_checkpoint('https://h/m.pth', str(tmp_path))
    assert not os.listdir(tmp_path)
