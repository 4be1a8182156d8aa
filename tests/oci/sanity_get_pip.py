"""Stands in for ansible-test's ``get-pip.py`` download, which this machine cannot reach.

ansible-test runs it in each fresh sanity venv as ``python get_pip.py [pip options] pip==X``
(``ansible_test/_util/target/setup/requirements.py``, ``bootstrap``), with pip's configuration
files switched off (``PIP_CONFIG_FILE=/dev/null``). This one installs the pip that CPython
bundles (``ensurepip``, offline), then the pip version asked for from the package index, trusting
the system's certificate store as pip does by default from 24.2 on. The sanity requirements
ansible-test then installs come from the package index too.
"""

import ensurepip
import ssl
import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")  # get-pip.py's own flags; pip has no such flags

args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
ensurepip.bootstrap()
cafile = ssl.get_default_verify_paths().cafile
cert = ["--cert", cafile] if cafile else []
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *cert, *args]))
