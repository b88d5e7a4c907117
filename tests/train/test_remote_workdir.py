"""A `gs://` workdir: the engine's run files (config, metrics, best metrics, submissions) go
through `etils.epath`, here redirected to a local folder by epath's own test backend."""
import contextlib
import json

from etils import epath
from etils.epath import testing as epath_testing

from jaxvg.train import trainer
from jaxvg.train.logging import MetricWriter

BUCKET = 'gs://bucket/run'


@contextlib.contextmanager
def fake_bucket(local):
  """Every gs:// path is served from `local`; anything else is untouched."""
  def redirect(path):
    text = str(path)
    return str(local / text[len('gs://'):]) if text.startswith('gs://') else text

  def one(fn, path, *args, **kwargs):
    return fn(redirect(path), *args, **kwargs)

  def two(fn, src, dst, *args, **kwargs):
    return fn(redirect(src), redirect(dst), *args, **kwargs)

  names = ('exists', 'glob', 'isdir', 'listdir', 'makedirs', 'mkdir', 'open', 'remove',
           'rmtree', 'stat', 'walk')
  with epath_testing.mock_epath(**{n: one for n in names}, copy=two, rename=two, replace=two):
    yield


def test_metrics_and_best_metrics_land_in_the_bucket(tmp_path):
  with fake_bucket(tmp_path):
    writer = MetricWriter(BUCKET)
    writer.write(5, 'train', {'loss': 1.5})
    best = {}
    trainer._record_eval(writer, 10, 1, {'MR-full-mAP': 12.5}, best, epath.Path(BUCKET))
    writer.close()
    resumed = MetricWriter(BUCKET)      # a resumed run keeps the lines already there
    resumed.write(15, 'train', {'loss': 1.0})
    assert trainer._evaluated(epath.Path(BUCKET), 10)
  lines = [json.loads(line) for line in
           (tmp_path / 'bucket' / 'run' / 'metrics.jsonl').read_text().splitlines()]
  assert [(r['step'], r['split']) for r in lines] == [(5, 'train'), (10, 'val'), (15, 'train')]
  assert json.loads((tmp_path / 'bucket' / 'run' / 'best_metrics.json').read_text()) == {
      'MR-full-mAP': 12.5}
  assert not (tmp_path / 'bucket' / 'run' / 'tensorboard').exists()
