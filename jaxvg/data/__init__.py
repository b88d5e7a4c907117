"""jaxvg.data: records, benchmark readers, targets, frames, feature caches, Grain pipelines,
and the embedded synthetic benchmark."""
from jaxvg.data.features import FeatureCache
from jaxvg.data.frames import FrameReader
from jaxvg.data.pipeline import Loader, load_records, make_loader
from jaxvg.data.readers import DATASETS, DatasetSpec, ReadResult, get_spec, read_split
from jaxvg.data.records import AnnotationError, GroundingRecord
from jaxvg.data.synthetic import chance_metrics, ensure_synthetic
from jaxvg.data.targets import Targets, make_targets
