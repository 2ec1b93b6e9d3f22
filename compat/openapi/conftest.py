"""The openapi suite starts its server with the standalone suite's helper."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "standalone"))
