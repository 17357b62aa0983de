"""EMR Serverless entry point: run one `b2ner` command in the Spark driver.

The job run passes the command line as entryPointArguments, e.g. ["ingest", "-c", "cluster.yaml"].
spark-submit has already started the JVM with the Delta extension, so the SparkSession that the
command builds attaches to it; the exit code of the command is the job's exit code.
"""

import sys

from b2ner_cli.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
