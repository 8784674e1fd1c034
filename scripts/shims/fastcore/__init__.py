"""A minimal stand-in for the parts of fastcore pid_ssl's notebooks and CLIs use, for machines without fastcore
(a GPU box with torch but no notebook tool chain). scripts/gpu_check.sh puts it on the path only when
`import fastcore` fails; where fastcore is installed the real one is always used."""
__version__ = "0.0-shim"
