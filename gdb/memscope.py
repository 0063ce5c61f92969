"""memscope GDB plugin entry point.

Load it with `gdb -x gdb/memscope.py PROG` or `source gdb/memscope.py` at the
GDB prompt; `help memscope` then lists the commands. The auto-load script
installed beside libmemscope.so (libmemscope.so-gdb.py) loads the same
package by itself once the library's directory is an auto-load safe path.
"""

import os
import sys

_PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
if _PLUGIN_DIR not in sys.path:
    sys.path.insert(0, _PLUGIN_DIR)

import memscope_gdb  # noqa: E402  (needs the path above)

memscope_gdb.register(plugin_dir=_PLUGIN_DIR)
