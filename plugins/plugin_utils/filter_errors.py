# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side (plugin_utils: it imports ansible.errors, which module_utils may not). The
collection's filters wrap pure helpers: a helper's ValueError or TypeError becomes an
AnsibleFilterError that names the filter (so the task's error says which filter and why)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ansible.errors import AnsibleFilterError

F = TypeVar("F", bound=Callable[..., Any])


def filter_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]
