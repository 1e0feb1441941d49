import pytest
import torch

from kg.store import Store
from neurosym.prefix import DiscretePrefix
from pipelines.prefix_symbols import prefix_assignments, write_prefix_symbols


def test_prefix_anchors_are_written_and_read_back_as_symbols(tmp_path):
    torch.manual_seed(0)
    prefix = DiscretePrefix(length=4, dim=8, num_anchors=6)
    arrays = prefix_assignments(prefix, input_id=7)
    # Each prefix vector's nearest anchor, found here by brute force, with its softmax(-distance) share.
    with torch.no_grad():
        distances = torch.cdist(prefix.prefix, prefix.anchors) ** 2  # (P, M)
    nearest = distances.argmin(-1)
    share = torch.softmax(-distances, -1).gather(-1, nearest[:, None]).squeeze(-1)
    assert len(set(nearest.tolist())) > 1  # the example picks different anchors, so order matters
    assert arrays["slot"].tolist() == [0, 1, 2, 3] and set(arrays["input_ids"].tolist()) == {7}
    assert arrays["code"].tolist() == nearest.tolist()
    with Store.open(tmp_path / "s.sqlite") as store:
        run = store.create_run("prefix", {"length": 4, "anchors": 6}, 0, "test")
        assert write_prefix_symbols(store, run, prefix, key="task-a") == 4
        with store.engine.connect() as conn:
            stored = conn.exec_driver_sql(f"SELECT slot, code, confidence FROM assignment WHERE run_id = {run} "
                                          "ORDER BY slot").all()
            anchors = conn.exec_driver_sql(f"SELECT COUNT(*) FROM code WHERE run_id = {run}").scalar()
        assert [(s, c) for s, c, _ in stored] == list(enumerate(nearest.tolist()))
        assert [c for _, _, c in stored] == pytest.approx(share.tolist(), rel=1e-5)
        assert anchors == 6
        codes = store.sparql("SELECT ?c WHERE { ?a ns:input ?i ; ns:code ?c }").rows
        assert sorted(int(str(c).rsplit("/", 1)[1]) for (c,) in codes) == sorted(nearest.tolist())
