"""memscope's GDB settings and where the engine library is found.

`set memscope engine-library PATH` (or the environment variable
MEMSCOPE_ENGINE_LIBRARY) names libmemscope-engine.so explicitly. Without it
the engine is looked for, in order: beside the auto-loaded plugin script (the
build tree's or the install's lib directory), beside the libmemscope.so the
inferior loaded, then in <source tree>/build/lib when this is the source
tree, or in the install's lib directory when this is an installed copy
(memscope_gdb/_config.py, written at install, gives it relative to the plugin).
"""

import os
import re

import gdb

from . import engine as eng

_state = {
    "plugin_dir": None,     # directory of memscope.py (holds memscope_gdb/)
    "engine_dirs": [],      # directories registered by auto-load scripts
    "engines": {},          # path -> Engine (a loaded library cannot be unloaded)
}


def add_engine_dir(path):
    """Remembers a directory that may hold libmemscope-engine.so (first added, first tried)."""
    if path and path not in _state["engine_dirs"]:
        _state["engine_dirs"].append(path)


def set_plugin_dir(path):
    _state["plugin_dir"] = path


class SetMemscope(gdb.Command):
    """Set memscope options.

Usage: set memscope SETTING VALUE"""

    def __init__(self):
        super().__init__("set memscope", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class ShowMemscope(gdb.Command):
    """Show memscope options.

Usage: show memscope [SETTING]"""

    def __init__(self):
        super().__init__("show memscope", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        gdb.write("engine-library: %s\n" % (EngineLibrary.instance.describe()))


class EngineLibrary(gdb.Parameter):
    """Path of libmemscope-engine.so, the engine the memscope commands run.

Empty (the default) means: the environment variable MEMSCOPE_ENGINE_LIBRARY,
else the library beside the plugin or beside the inferior's libmemscope.so,
else the build tree (build/lib) or the install's lib directory.
Example: set memscope engine-library /opt/memscope/lib/libmemscope-engine.so"""

    set_doc = "Set the path of libmemscope-engine.so for the memscope commands."
    show_doc = "Show the path of libmemscope-engine.so for the memscope commands."
    instance = None

    def __init__(self):
        super().__init__("memscope engine-library", gdb.COMMAND_DATA, gdb.PARAM_OPTIONAL_FILENAME)
        self.value = ""
        EngineLibrary.instance = self

    def get_set_string(self):
        from . import store
        store.invalidate()
        return ""

    def get_show_string(self, svalue):
        return self.describe()

    def describe(self):
        if self.value:
            return self.value
        try:
            return "(automatic: %s)" % locate_engine()
        except gdb.GdbError:
            return "(automatic: not found)"


class AllocFns(gdb.Parameter):
    """The program's own allocation wrappers, hidden like malloc in sites and stacks.

A list of function names separated by commas or spaces (xmalloc, my_alloc,
Pool::get): a frame in one of them is the allocator's, so the site of a
block is the wrapper's caller (as massif's --alloc-fn). Empty by default.
Example: set memscope alloc-fns xmalloc,xcalloc,xrealloc"""

    set_doc = "Set the program's allocation wrappers for memscope's sites."
    show_doc = "Show the program's allocation wrappers for memscope's sites."
    instance = None

    def __init__(self):
        super().__init__("memscope alloc-fns", gdb.COMMAND_DATA, gdb.PARAM_STRING)
        self.value = ""
        AllocFns.instance = self

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        return svalue or "(none)"


def alloc_fns():
    """The names `set memscope alloc-fns` gave, as a list of str."""
    value = AllocFns.instance.value if AllocFns.instance else ""
    return [name for name in re.split(r"[,\s]+", value or "") if name]


def _default_dirs():
    dirs = list(_state["engine_dirs"])
    for objfile in gdb.objfiles():
        name = objfile.filename or ""
        if os.path.basename(name).startswith("libmemscope") and "engine" not in os.path.basename(name):
            dirs.append(os.path.dirname(name))
    plugin = _state["plugin_dir"]
    try:
        from . import _config  # written by CMake into installed copies only
    except ImportError:
        if plugin:  # the source tree: <repo>/gdb/memscope.py, engine in <repo>/build/lib
            dirs.append(os.path.normpath(os.path.join(plugin, "..", "build", "lib")))
    else:
        dirs.extend(os.path.normpath(os.path.join(plugin or "", d)) for d in _config.ENGINE_DIRS)
    seen = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def locate_engine():
    """Path of the engine library, per the rules in this module's docstring."""
    explicit = EngineLibrary.instance.value if EngineLibrary.instance else ""
    if explicit:
        if not os.path.isfile(explicit):
            raise gdb.GdbError("the memscope engine library '%s' does not exist: fix it with '%s PATH'."
                               % (explicit, eng.ENGINE_SETTING))
        return explicit
    env = os.environ.get(eng.ENGINE_ENV, "")
    if env:
        if not os.path.isfile(env):
            raise gdb.GdbError("the memscope engine library '%s' (from %s) does not exist: fix %s or use '%s PATH'."
                               % (env, eng.ENGINE_ENV, eng.ENGINE_ENV, eng.ENGINE_SETTING))
        return env
    dirs = _default_dirs()
    for d in dirs:
        path = os.path.join(d, eng.ENGINE_LIBRARY_NAME)
        if os.path.isfile(path):
            return path
    raise gdb.GdbError("cannot find %s (looked in %s): set it with '%s PATH' or the environment variable %s."
                       % (eng.ENGINE_LIBRARY_NAME, ", ".join(dirs) or "no directory",
                          eng.ENGINE_SETTING, eng.ENGINE_ENV))


def engine_setting():
    """What decides the engine now (for cache keys): the setting and the environment."""
    value = EngineLibrary.instance.value if EngineLibrary.instance else ""
    return (value, os.environ.get(eng.ENGINE_ENV, ""))


def engine():
    """The loaded Engine for the current setting."""
    path = os.path.realpath(locate_engine())
    loaded = _state["engines"].get(path)
    if loaded is None:
        loaded = eng.Engine(path)
        _state["engines"][path] = loaded
    return loaded


def register():
    SetMemscope()
    ShowMemscope()
    EngineLibrary()
    AllocFns()
