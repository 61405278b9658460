import numpy as np
import pytest

from gradwise.data import DataError, load_csv


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_default_target_is_last_column(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,3.5\n4,5,6.5\n")
    X, y, names = load_csv(p)
    np.testing.assert_array_equal(X, [[1, 2], [4, 5]])
    assert X.dtype == np.float64
    np.testing.assert_array_equal(y, [3.5, 6.5])
    assert names == ["a", "b"]


def test_select_target_and_features(tmp_path):
    p = write(tmp_path, "a,b,c,d\n1,2,3,0\n4,5,6,1\n")
    X, y, names = load_csv(p, target="a", features=["c", "b"])
    np.testing.assert_array_equal(X, [[3, 2], [6, 5]])
    np.testing.assert_array_equal(y, [1, 4])
    assert y.dtype == np.int64 and names == ["c", "b"]
    X, y, names = load_csv(p, target=0)
    assert names == ["b", "c", "d"]


def test_text_labels_kept_as_strings(tmp_path):
    p = write(tmp_path, "x,label\n1,cat\n2,dog\n")
    _, y, _ = load_csv(p)
    assert y.tolist() == ["cat", "dog"]


def one_line(e):
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file") as e:
        load_csv(tmp_path / "nope.csv")
    one_line(e)


def test_directory_and_unreadable(tmp_path):
    with pytest.raises(DataError, match="directory"):
        load_csv(tmp_path)
    p = tmp_path / "bin.csv"
    p.write_bytes(b"a,b\n\xff\xfe\x00,1\n")
    with pytest.raises(DataError, match="cannot read") as e:
        load_csv(p)
    one_line(e)


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        load_csv(write(tmp_path, ""))
    with pytest.raises(DataError, match="no data rows"):
        load_csv(write(tmp_path, "a,b\n"))


def test_unknown_column_lists_available(tmp_path):
    p = write(tmp_path, "size,rooms,price\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError) as e:
        load_csv(p, target="prise")
    assert one_line(e).endswith("available columns: size, rooms, price")
    with pytest.raises(DataError, match="'area' not found"):
        load_csv(p, features=["area"])
    with pytest.raises(DataError, match="out of range"):
        load_csv(p, target=7)


def test_non_numeric_names_column_and_lines(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,3\n1,x,4\n2,3,5\n5,??,9\n")
    with pytest.raises(DataError) as e:
        load_csv(p)
    msg = one_line(e)
    assert "column 'b'" in msg and "lines 3, 5" in msg and "'x'" in msg


def test_infinite_values(tmp_path):
    p = write(tmp_path, "a,y\n1,2\ninf,3\n")
    with pytest.raises(DataError, match="infinite values at line 3"):
        load_csv(p)


def test_missing_cells_and_dropna(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,3\n1,,4\n2,3,5\n5,6,\n")
    with pytest.raises(DataError) as e:
        load_csv(p)
    msg = one_line(e)
    assert "column 'b'" in msg and "line 3" in msg and "2 incomplete rows" in msg
    assert "dropna=True" in msg
    X, y, _ = load_csv(p, dropna=True)
    np.testing.assert_array_equal(X, [[1, 2], [2, 3]])
    np.testing.assert_array_equal(y, [3, 5])


def test_constant_target(tmp_path):
    p = write(tmp_path, "a,y\n1,7\n2,7\n3,7\n")
    with pytest.raises(DataError, match="target column 'y' .* is constant") as e:
        load_csv(p)
    one_line(e)


def test_target_also_feature(tmp_path):
    p = write(tmp_path, "a,y\n1,7\n2,8\n")
    with pytest.raises(DataError, match="both the target and a feature"):
        load_csv(p, target="a", features=["a"])
    with pytest.raises(DataError, match="no feature column"):
        load_csv(write(tmp_path, "y\n1\n2\n", "one.csv"))
