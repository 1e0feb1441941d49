import torch

from kg.store import Store
from neurosym.prefix import DiscretePrefix
from pipelines.prefix_symbols import prefix_assignments, write_prefix_symbols


def test_prefix_anchors_are_written_and_read_back_as_symbols(tmp_path):
    torch.manual_seed(0)
    prefix = DiscretePrefix(length=4, dim=8, num_anchors=6)
    arrays = prefix_assignments(prefix, input_id=7)
    assert arrays["slot"].tolist() == [0, 1, 2, 3] and set(arrays["input_ids"].tolist()) == {7}
    assert arrays["code"].tolist() == prefix.symbols()[0].tolist()
    with Store.open(tmp_path / "s.sqlite") as store:
        run = store.create_run("prefix", {"length": 4, "anchors": 6}, 0, "test")
        assert write_prefix_symbols(store, run, prefix, key="task-a") == 4
        result = store.sparql("SELECT (COUNT(?a) AS ?n) WHERE { ?a ns:input ?i ; ns:code ?c }")
        assert int(list(result)[0][0]) == 4
