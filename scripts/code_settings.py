"""The IMGPIPE_* settings as the Rust code reads them, for the infra checks
(scripts/check_infra.py before Terraform, tests/terraform/check_applied.py
after an apply): one reading of src/, so both hold infra/ to the same list.
Plain Python, no dependencies: it runs in either check's venv.
"""
import pathlib
import re

NAME = re.compile(r'"(IMGPIPE_[A-Z0-9_]+)"')


def _listed(config_rs, const):
    """The names in `pub const <const>: &[&str] = &[...];` in src/config.rs."""
    return set(NAME.findall(re.search(const + r"[^=]*=\s*&\[(.*?)\];", config_rs, re.S).group(1)))


def settings(root):
    """(read in AWS mode, local only, may come from SSM) for the repo at root."""
    src = pathlib.Path(root) / "src"
    read = set()
    for path in src.rglob("*.rs"):
        read |= set(NAME.findall(path.read_text()))
    config_rs = (src / "config.rs").read_text()
    local_only = _listed(config_rs, "LOCAL_ONLY_VARIABLES")
    return read - local_only, local_only, _listed(config_rs, "PARAMETER_VARIABLES")
