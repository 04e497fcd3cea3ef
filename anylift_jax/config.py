"""One config system for every program: `--config FILE[:ARG]` and `--config.KEY=VALUE` overrides.

FILE is a Python file whose `get_config(arg)` returns an `ml_collections.ConfigDict`; ARG picks a
variant (e.g. `configs/multi_view.py:tiny`). A FILE that does not exist as given is looked up
inside the package's configs (`anylift_jax.CONFIGS`), with or without a leading `configs/`, so the
same command works from a checkout and after a plain `pip install`. Overrides take Python literals
(`--config.lift.fit_body=False`, `--config.data.image_size=(1280,720)`); anything else is a string.
"""
import ast
import importlib.util
from pathlib import Path

from anylift_jax import CONFIGS


def resolve(path):
    """The config file `path` names: as given, else under the package's configs."""
    p = Path(path)
    if p.is_file():
        return p
    parts = p.parts[1:] if p.parts[:1] == ("configs",) else p.parts
    packaged = Path(CONFIGS).joinpath(*parts) if parts else None
    if packaged is not None and packaged.is_file():
        return packaged
    raise FileNotFoundError(f"{path}: no such config file (nor under {CONFIGS})")


def load(spec):
    """The ConfigDict of `FILE[:ARG]`: FILE's `get_config(ARG)` (`get_config()` without ARG)."""
    path, sep, arg = str(spec).partition(":")
    path = resolve(path)
    module_spec = importlib.util.spec_from_file_location(f"anylift_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path}: a config file defines get_config(arg)")
    return module.get_config(arg) if sep else module.get_config()


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string


def override(config, items):
    """`config` with each `KEY=VALUE` of `items` set (KEY dotted, VALUE a Python literal); a KEY
    the config lacks is an error (a typo must not train the defaults)."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config.{item}: expected --config.KEY=VALUE")
        *path, leaf = key.split(".")
        node = config
        for part in path:
            if part not in node:
                raise KeyError(f"--config.{key}: the config has no '{part}'")
            node = node[part]
        if leaf not in node:
            raise KeyError(f"--config.{key}: the config has no '{leaf}'")
        value = _literal(value)
        if isinstance(node[leaf], tuple) and isinstance(value, list):
            value = tuple(value)
        try:
            node[leaf] = value
        except TypeError as e:
            raise ValueError(f"--config.{key}={value!r}: {e}") from None
    return config


def add_argument(parser, default=None, help="config file[:variant]"):
    """Adds `--config` to an argparse parser; `parse` reads it and the `--config.KEY=VALUE` overrides."""
    parser.add_argument("--config", default=default, required=default is None,
                        help=f"{help}; --config.KEY=VALUE overrides any field")


def parse(parser, argv=None):
    """argparse's namespace with `config` the loaded ConfigDict, `--config.KEY=VALUE` and
    `--config.KEY VALUE` overrides applied; any other unknown argument is an error."""
    args, rest = parser.parse_known_args(argv)
    items = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith("--config."):
            parser.error(f"unrecognized argument: {arg}")
        item = arg[len("--config."):]
        if "=" not in item:
            if i + 1 >= len(rest):
                parser.error(f"{arg}: expected a value")
            item, i = f"{item}={rest[i + 1]}", i + 1
        items.append(item)
        i += 1
    try:
        args.config = override(load(args.config), items)
    except (KeyError, ValueError, FileNotFoundError) as e:
        parser.error(str(e).strip("\"'"))
    return args

