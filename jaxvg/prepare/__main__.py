"""`python -m jaxvg.prepare frames|features|stvg_frames|degrade ...`: offline data preparation.

frames    decode videos with PyAV into pre-decoded frame shards (jaxvg.prepare.frames)
features  run the frozen CLIP over pre-decoded frames into the feature cache (jaxvg.prepare.features)
stvg_frames  STVG frames at the HC-STVG / VidSTG sampling rules, raw frame indices kept
          (jaxvg.prepare.stvg_frames)
degrade   re-encode videos with H.264 at a CRF, or as the mixing protocol says (jaxvg.prepare.degrade)
"""
import importlib
import sys

from jaxvg.errors import UserError, cli_boundary

_COMMANDS = ('frames', 'features', 'stvg_frames', 'degrade')


@cli_boundary
def main(argv: list[str]) -> int:
  if not argv or argv[0] not in _COMMANDS:
    given = repr(argv[0]) if argv else 'no command'
    raise UserError(f'{given}: choose one of {", ".join(_COMMANDS)} '
                    '(python -m jaxvg.prepare COMMAND --help)')
  module = importlib.import_module(f'jaxvg.prepare.{argv[0]}')
  return module.main(argv[1:]) or 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
