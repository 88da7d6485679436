"""Finding a converter class from the spec written in the config.

Three spellings, one result (a ``ConverterBase`` subclass):

- a built-in short name: ``wsjf``, ``wsxf``, ``atml``, ``teststand-xml``, ``openhtf``, ``csv``;
- an import path: ``package.module:ClassName`` (anything importable, e.g. an installed package);
- a site's own file: ``my_converter.py`` or ``my_converter.py:ClassName``, relative to the
  converters folder (``[paths] converters_dir``) or absolute. The file is imported as a normal
  module under a unique name, so its ``import`` statements work like anywhere else, and the
  converters folder is on ``sys.path`` so it can import helper modules that sit next to it.

Every failure is a ``ConverterLoadError`` that names the spec and says what to fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType

from wats.config.builtins import BUILTIN_CONVERTERS
from wats.converters.base import ConverterBase

__all__ = [
    "BUILTIN_CONVERTERS",
    "ConverterLoadError",
    "builtin_converters",
    "load_converter_class",
    "site_module_name",
]


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_SITE_PACKAGE = "wats_site_converters"
_lock = threading.Lock()


class ConverterLoadError(Exception):
    """A converter spec that cannot be turned into a converter class; ``str()`` says why."""


def builtin_converters() -> dict[str, type[ConverterBase]]:
    """The built-in converter classes by short name."""
    return {name: _from_import_path(name, path) for name, path in BUILTIN_CONVERTERS.items()}


def load_converter_class(spec: str, converters_dir: Path | None = None) -> type[ConverterBase]:
    """The converter class named by ``spec`` (built-in name, ``pkg.mod:Class`` or ``file.py``
    / ``file.py:Class``); relative file names are looked up in ``converters_dir``."""
    spec = spec.strip()
    if not spec:
        raise ConverterLoadError("converter spec is empty")
    builtin = BUILTIN_CONVERTERS.get(spec.lower())
    if builtin is not None:
        return _from_import_path(spec, builtin)
    file_part, class_name = _split_file_spec(spec)
    if file_part is not None:
        return _from_file(spec, file_part, class_name, converters_dir)
    if _IMPORT_PATH.match(spec):
        return _from_import_path(spec, spec)
    known = ", ".join(sorted(BUILTIN_CONVERTERS))
    raise ConverterLoadError(
        f"converter {spec!r}: not a built-in name ({known}), an import path "
        "'package.module:ClassName', or a Python file 'name.py[:ClassName]'"
    )


def site_module_name(path: Path) -> str:
    """The module name a site converter file is imported under: unique per resolved path, so
    two sites' ``converter.py`` files never replace each other in ``sys.modules``."""
    resolved = str(Path(path).resolve())
    tag = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = re.sub(r"\W", "_", Path(path).stem) or "converter"
    return f"{_SITE_PACKAGE}.{stem}_{tag}"


# -- helpers -------------------------------------------------------------------------------------


def _split_file_spec(spec: str) -> tuple[str | None, str | None]:
    """(file, class) for a ``.py`` spec, else (None, None). Splits on the last ':' only when
    what follows is an identifier, so Windows drive letters (``C:\\x.py``) stay in the path."""
    head, sep, tail = spec.rpartition(":")
    if sep and _IDENTIFIER.match(tail) and head.lower().endswith(".py"):
        return head, tail
    if spec.lower().endswith(".py"):
        return spec, None
    return None, None


def _from_import_path(spec: str, import_path: str) -> type[ConverterBase]:
    module_name, _, class_name = import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConverterLoadError(
                f"converter {spec!r}: no module named {exc.name!r} (is the package installed "
                "in the environment wats-supervisor runs in?)"
            ) from None
        raise ConverterLoadError(
            f"converter {spec!r}: importing {module_name} failed: {_describe(exc)}"
        ) from None
    except Exception as exc:  # any error in site code is the site's to fix
        raise ConverterLoadError(
            f"converter {spec!r}: importing {module_name} failed: {_describe(exc)}"
        ) from None
    return _pick_class(spec, module, class_name)


def _from_file(
    spec: str, file_part: str, class_name: str | None, converters_dir: Path | None
) -> type[ConverterBase]:
    path = Path(file_part).expanduser()
    if not path.is_absolute():
        if converters_dir is None:
            raise ConverterLoadError(
                f"converter {spec!r}: a relative file needs the converters folder "
                "([paths] converters_dir), or give an absolute path"
            )
        path = Path(converters_dir) / path
    if not path.is_file():
        raise ConverterLoadError(f"converter {spec!r}: file not found: {path}")
    module = _import_file(spec, path)
    return _pick_class(spec, module, class_name)


def _import_file(spec: str, path: Path) -> ModuleType:
    name = site_module_name(path)
    with _lock:
        loaded = sys.modules.get(name)
        if loaded is not None:
            return loaded
        _ensure_site_package()
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)  # appended: a site file must not shadow the stdlib
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConverterLoadError(f"converter {spec!r}: cannot load {path} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # before exec, as import does (dataclasses, pickling need it)
        try:
            module_spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(name, None)
            raise ConverterLoadError(
                f"converter {spec!r}: syntax error in {path} line {exc.lineno}: {exc.msg}"
            ) from None
        except (Exception, SystemExit) as exc:  # site code may even call sys.exit()
            sys.modules.pop(name, None)
            raise ConverterLoadError(
                f"converter {spec!r}: importing {path} failed: {_describe(exc)}"
            ) from None
        return module


def _ensure_site_package() -> None:
    if _SITE_PACKAGE not in sys.modules:
        package = ModuleType(_SITE_PACKAGE)
        package.__path__ = []  # a namespace for the site modules; nothing is found through it
        sys.modules[_SITE_PACKAGE] = package


def _pick_class(spec: str, module: ModuleType, class_name: str | None) -> type[ConverterBase]:
    if class_name is not None:
        found = getattr(module, class_name, None)
        if found is None:
            candidates = ", ".join(c.__name__ for c in _converters_in(module)) or "none"
            raise ConverterLoadError(
                f"converter {spec!r}: {module.__name__} has no {class_name!r} "
                f"(converter classes there: {candidates})"
            )
        return _checked(spec, found)
    candidates = _converters_in(module)
    if len(candidates) == 1:
        return _checked(spec, candidates[0])
    if not candidates:
        raise ConverterLoadError(
            f"converter {spec!r}: the file defines no ConverterBase subclass "
            "(subclass wats.converters.ConverterBase and implement convert())"
        )
    names = ", ".join(c.__name__ for c in candidates)
    raise ConverterLoadError(
        f"converter {spec!r}: the file defines several converters ({names}); "
        "name one as 'file.py:ClassName'"
    )


def _converters_in(module: ModuleType) -> list[type[ConverterBase]]:
    """Concrete converter classes defined in ``module`` itself (not imported into it)."""
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ConverterBase)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def _checked(spec: str, found: object) -> type[ConverterBase]:
    if not (inspect.isclass(found) and issubclass(found, ConverterBase)):
        raise ConverterLoadError(
            f"converter {spec!r}: {found!r} is not a subclass of wats.converters.ConverterBase"
        )
    if inspect.isabstract(found):
        missing = ", ".join(sorted(getattr(found, "__abstractmethods__", ())))
        raise ConverterLoadError(
            f"converter {spec!r}: {found.__name__} does not implement {missing}"
        )
    if not isinstance(found.name, str) or not found.name.strip():
        raise ConverterLoadError(
            f"converter {spec!r}: {found.__name__} must set the class attribute name = '...'"
        )
    if found.kind not in ("file", "folder", "scheduled"):
        raise ConverterLoadError(
            f"converter {spec!r}: {found.__name__}.kind must be 'file', 'folder' or "
            f"'scheduled', not {found.kind!r}"
        )
    return found


def _describe(exc: BaseException) -> str:
    """``Type: message`` plus where in the site's code it happened (last frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
