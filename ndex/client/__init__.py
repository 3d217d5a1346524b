"""The BOSS v1 wire client: resource models, metadata and cutout GET/POST over one pooled session.

    with BossClient(ndex.config.discover()) as boss:
        info = boss.channel_info(ChannelRef("coll", "exp", "chan"))
        info.check_res(0); info.check_box(box, 0)
        block = boss.get_cutout(info.ref, 0, box, info.dtype)
"""
from ndex.client._http import ClientStats
from ndex.client.boss import BossClient
from ndex.client.models import Channel, ChannelInfo, ChannelRef, Collection, CoordFrame, Experiment

__all__ = ["BossClient", "Channel", "ChannelInfo", "ChannelRef", "ClientStats", "Collection", "CoordFrame",
           "Experiment"]
