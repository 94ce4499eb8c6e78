#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""png2y4m.py LABEL.png OUT.y4m [WIDTH HEIGHT FRAMES]: a reel's claim label as a Y4M video,
what Chromium's fake camera (--use-file-for-fake-video-capture) plays in a loop.

The label is centred on white, scaled down (whole pixels per module kept where it fits) so a
quiet zone of white stays around it, then written as grayscale: the Y plane is the image, U
and V are 128 (no colour), 4:2:0 subsampling, so each frame is W*H + 2*(W/2*H/2) bytes.
"""
import sys

from PIL import Image


def main():
    if len(sys.argv) not in (3, 6):
        sys.exit("usage: png2y4m.py LABEL.png OUT.y4m [WIDTH HEIGHT FRAMES]")
    width, height, frames = (640, 480, 5) if len(sys.argv) == 3 else map(int, sys.argv[3:6])
    if width % 2 or height % 2 or width < 64 or height < 64 or frames < 1:
        sys.exit("png2y4m.py: WIDTH and HEIGHT must be even and at least 64, FRAMES at least 1")
    label = Image.open(sys.argv[1]).convert("L")
    # leave at least an eighth of the shorter side as white margin around the label
    room = min(width, height) * 3 // 4
    if max(label.width, label.height) > room:
        # shrink by a whole factor, so the modules stay sharp-edged
        factor = -(-max(label.width, label.height) // room)
        label = label.resize((label.width // factor, label.height // factor), Image.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(label, ((width - label.width) // 2, (height - label.height) // 2))
    y = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with open(sys.argv[2], "wb") as out:
        out.write(b"YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\n" % (width, height))
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(y)
            out.write(chroma)
            out.write(chroma)


if __name__ == "__main__":
    main()
