"""Mesh construction: -1 fills, size errors, and the data axis spanning the slices of a
multi-slice TPU pod (checked on TPU topology devices, which libtpu describes without a TPU)."""

import jax
import pytest

from albert_jax.errors import InputError
from albert_jax.train import mesh as mesh_lib
from albert_jax.train.config import DEFAULT_RULES


@pytest.fixture(scope="module")
def two_slices():
    topologies = pytest.importorskip("jax.experimental.topologies")
    topology = topologies.get_topology_desc(platform="tpu", topology_name="v5e:2x2",
                                            chips_per_host_bounds=(2, 2, 1), num_slices=2)
    return topology.devices


def test_data_axis_spans_the_slices(two_slices):
    mesh = mesh_lib.make_mesh(-1, 2, 1, devices=two_slices)
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2, "tensor": 1}
    # Only the data axis crosses between slices; fsdp and tensor stay within one.
    slices = [[d.slice_index for d in row.flat] for row in mesh.devices]
    assert slices == [[0, 0], [0, 0], [1, 1], [1, 1]]
    assert mesh_lib.data_parallel_size(mesh, DEFAULT_RULES) == 8


def test_dcn_data_must_match_the_slices(two_slices):
    with pytest.raises(InputError, match="dcn_data=1, but the devices form 2 slice"):
        mesh_lib.make_mesh(2, 2, 1, dcn_data=1, devices=two_slices)


@pytest.mark.parametrize("shape, message", [
    ((-1, -1, 1), "at most one of them -1"),
    ((0, 1, 1), "positive sizes"),
    ((-1, 3, 1), "3 does not divide the 1 devices"),
    ((2, 1, 1), "has 2 devices, but there are 1 devices"),
])
def test_bad_mesh_sizes(shape, message):
    with pytest.raises(InputError, match=message):
        mesh_lib.make_mesh(*shape)


def test_batch_rows_of_the_single_process():
    mesh = mesh_lib.make_mesh(-1, 1, 1)
    sharding = mesh_lib.batch_sharding(mesh, DEFAULT_RULES, 2)
    assert sharding.spec == jax.sharding.PartitionSpec(("data", "fsdp"), None)
    assert mesh_lib.process_rows(sharding, 8) == (0, 8)
