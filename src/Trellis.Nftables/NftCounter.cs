namespace Trellis.Nftables;

/// <summary>A named counter's values (<c>nft list counter FAMILY TABLE NAME</c>).</summary>
public readonly record struct NftCounter(long Packets, long Bytes);
