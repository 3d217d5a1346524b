"""`ndex info` lists what a server holds, from collections down to a channel's levels."""
import json

from fixtures_server import make_channel

from ndex.cli.main import main


def test_info_walks_collection_experiment_channel(ndex_server, capsys):
    chan = make_channel(ndex_server, datatype="uint16", extent=(1000, 600, 40), levels=3,
                        hierarchy="anisotropic")
    coll, exp, name = chan.path.split("/")
    conn = ["--url", ndex_server.url, "--token", ndex_server.token]
    assert main(["info", *conn]) == 0
    assert coll in capsys.readouterr().out
    assert main(["info", *conn, coll]) == 0
    assert exp in capsys.readouterr().out
    assert main(["info", *conn, coll, exp]) == 0
    assert name in capsys.readouterr().out
    assert main(["info", *conn, coll, exp, name]) == 0
    out = capsys.readouterr().out
    assert "uint16" in out and "res 1: x 0:500, y 0:300, z 0:40  (not built)" in out
    assert "res 0: x 0:1000, y 0:600, z 0:40\n" in out  # the base level is always built
    assert main(["info", *conn, "--json", coll, exp, name]) == 0
    assert json.loads(capsys.readouterr().out)["channel"]["datatype"] == "uint16"
    assert ndex_server.token not in out


def test_info_unknown_collection_is_one_line(ndex_server, capsys):
    assert main(["info", "--url", ndex_server.url, "--token", ndex_server.token, "no_such_collection"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no_such_collection" in err and len(err.strip().splitlines()) == 1
