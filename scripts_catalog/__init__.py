"""The bundled clinic catalog (clinic.yaml and one YAML file per procedure script).

This folder is data, shipped inside the wheel as ``clinicflow.scripts_catalog`` so that
``pip install`` users get a working default catalog. See docs/script-language.md.
"""
