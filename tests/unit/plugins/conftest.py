"""Make the checkout importable as the collection ``faceswap_oci.core``, as Ansible sees it."""

import sys
from pathlib import Path

_COLLECTIONS = Path(__file__).resolve().parents[3] / ".collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))
