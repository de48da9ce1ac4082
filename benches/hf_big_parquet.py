"""Writes a large InstructCoder-layout Parquet dataset for timing `--dataset-name hf`
(a benchmark, not a test). 500,000 rows, 650 MB, snappy, 10,000-row row groups:

    pip install pyarrow && python3 benches/hf_big_parquet.py /tmp/bigic
    /usr/bin/time -f "%e s %M KB" target/release/moonbench bench --backend openai-chat \
        --dataset-name hf --dataset-path /tmp/bigic --hf-name likaixin/InstructCoder \
        --num-prompts 100000 --dry-run

Rows are read a row group at a time, so memory follows the prompts kept, not the file.
"""
import os
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bigic"
random.seed(0)
words = "the quick brown fox jumps over a lazy dog while code runs fast and slow".split()
os.makedirs(os.path.join(out, "data"), exist_ok=True)
writer = None
for part in range(10):
    n = 50000
    t = pa.table({
        "instruction": [" ".join(random.choices(words, k=20)) for _ in range(n)],
        "input": [" ".join(random.choices(words, k=400)) for _ in range(n)],
        "output": [" ".join(random.choices(words, k=300)) for _ in range(n)],
        "domain": ["code"] * n,
    })
    if writer is None:
        writer = pq.ParquetWriter(os.path.join(out, "data/train-00000-of-00001.parquet"), t.schema,
                                  compression="snappy", use_dictionary=False)
    writer.write_table(t, row_group_size=10000)
writer.close()
