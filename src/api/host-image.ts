/**
 * The image center's endpoints (`/common/image/*`): the node's images, its image servers', transfers.
 */
import { Type, type Static } from "@sinclair/typebox";
import { StringEnum } from "./common.js";

export const ImageName = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description: "An image file name, e.g. debian-12.qcow2" });
export const ServerId = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description: "A configured image server's id (GET /common/image/servers)" });

export const ImageItem = Type.Object({
  name: Type.String(),
  size_bytes: Type.Integer(),
  sha256: Type.Optional(Type.String()),
  owner: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: "The renter whose tasks alone may boot it (null: the operator's)" })),
});
export const Transfer = Type.Object(
  {
    name: Type.String(),
    direction: StringEnum(["download", "upload"]),
    server: Type.String(),
    status: Type.String({ description: "downloading | uploading | done | stopped | failed" }),
    progress: Type.Number({ description: "0…1" }),
    error: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: "ImageTransfer" },
);
export const ImageList = Type.Object({ images: Type.Array(ImageItem) });
export type ImageItem = Static<typeof ImageItem>;
export type ImageList = Static<typeof ImageList>;
export type Transfer = Static<typeof Transfer>;
