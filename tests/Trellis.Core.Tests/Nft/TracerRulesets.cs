namespace Trellis.Core.Tests.Nft;

/// <summary>
/// Hand-written rulesets in the proxy README's subset. <see cref="KubeProxy"/> follows kube-proxy's nftables table
/// (pkg/proxy/nftables/proxier.go), renamed: node 172.30.0.11, pods 10.244.0.0/16 (this node 10.244.1.0/24),
/// services 10.96.0.0/16.
/// </summary>
internal static class TracerRulesets
{
    public const string Svc1 = "service-ULMVA6XW-ns1/svc1/tcp/p80";
    public const string Ext1 = "external-ULMVA6XW-ns1/svc1/tcp/p80";
    public const string Fw1 = "firewall-ULMVA6XW-ns1/svc1/tcp/p80";
    public const string Ep1 = "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.244.1.5/8080";
    public const string Ep2 = "endpoint-7UVQ2LBN-ns1/svc1/tcp/p80__10.244.2.7/8080";
    public const string Dns = "service-CCCC3M2Y-kube-system/dns/udp/dns";
    public const string DnsEp = "endpoint-D1D1WWQ2-kube-system/dns/udp/dns__10.244.1.9/53";
    public const string DnsAffinity = "affinity-D1D1WWQ2-kube-system/dns/udp/dns__10.244.1.9/53";

    public const string KubeProxy = $$"""
        add table ip trellis-proxy { comment "rules for trellis service proxy" ; }
        add chain ip trellis-proxy mark-for-masquerade
        add rule ip trellis-proxy mark-for-masquerade meta mark set meta mark | 0x4000
        add chain ip trellis-proxy masquerading
        add rule ip trellis-proxy masquerading meta mark & 0x4000 == 0 return
        add rule ip trellis-proxy masquerading meta mark set meta mark ^ 0x4000
        add rule ip trellis-proxy masquerading masquerade fully-random
        add chain ip trellis-proxy services
        add chain ip trellis-proxy service-endpoints-check
        add chain ip trellis-proxy nodeport-endpoints-check
        add chain ip trellis-proxy firewall-check
        add chain ip trellis-proxy cluster-ips-check
        add chain ip trellis-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
        add rule ip trellis-proxy reject-chain reject
        add chain ip trellis-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
        add chain ip trellis-proxy filter-input { type filter hook input priority -110 ; }
        add chain ip trellis-proxy filter-forward { type filter hook forward priority -110 ; }
        add chain ip trellis-proxy filter-output { type filter hook output priority -110 ; }
        add chain ip trellis-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
        add chain ip trellis-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
        add chain ip trellis-proxy nat-output { type nat hook output priority -100 ; }
        add chain ip trellis-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
        add set ip trellis-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
        add set ip trellis-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
        add map ip trellis-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
        add map ip trellis-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
        add map ip trellis-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; }
        add map ip trellis-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; }
        add map ip trellis-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
        add rule ip trellis-proxy filter-prerouting ct state new jump firewall-check
        add rule ip trellis-proxy filter-input ct state new jump nodeport-endpoints-check
        add rule ip trellis-proxy filter-input ct state new jump service-endpoints-check
        add rule ip trellis-proxy filter-forward ct state new jump service-endpoints-check
        add rule ip trellis-proxy filter-forward ct state new jump cluster-ips-check
        add rule ip trellis-proxy filter-output ct state new jump service-endpoints-check
        add rule ip trellis-proxy filter-output ct state new jump firewall-check
        add rule ip trellis-proxy filter-output-post-dnat ct state new jump cluster-ips-check
        add rule ip trellis-proxy nat-prerouting jump services
        add rule ip trellis-proxy nat-output jump services
        add rule ip trellis-proxy nat-postrouting jump masquerading
        add rule ip trellis-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
        add rule ip trellis-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
        add rule ip trellis-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
        add rule ip trellis-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
        add rule ip trellis-proxy cluster-ips-check ip daddr { 10.96.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
        add rule ip trellis-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
        add rule ip trellis-proxy services fib daddr type local ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports

        # ns1/svc1: ClusterIP 10.96.0.10:80, NodePort 30080, LoadBalancer 192.0.2.10 (sourceRanges 203.0.113.0/24), two endpoints
        add chain ip trellis-proxy {{Svc1}}
        add chain ip trellis-proxy {{Ext1}}
        add chain ip trellis-proxy {{Fw1}}
        add chain ip trellis-proxy {{Ep1}}
        add chain ip trellis-proxy {{Ep2}}
        add rule ip trellis-proxy {{Svc1}} ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
        add rule ip trellis-proxy {{Svc1}} numgen random mod 2 vmap { 0 : goto {{Ep1}}, 1 : goto {{Ep2}} }
        add rule ip trellis-proxy {{Ext1}} jump mark-for-masquerade
        add rule ip trellis-proxy {{Ext1}} goto {{Svc1}}
        add rule ip trellis-proxy {{Fw1}} ip saddr != { 203.0.113.0/24 } drop
        add rule ip trellis-proxy {{Ep1}} ip saddr 10.244.1.5 jump mark-for-masquerade
        add rule ip trellis-proxy {{Ep1}} meta l4proto tcp dnat to 10.244.1.5:8080
        add rule ip trellis-proxy {{Ep2}} ip saddr 10.244.2.7 jump mark-for-masquerade
        add rule ip trellis-proxy {{Ep2}} meta l4proto tcp dnat to 10.244.2.7:8080
        add element ip trellis-proxy service-ips { 10.96.0.10 . tcp . 80 : goto {{Svc1}}, 192.0.2.10 . tcp . 80 : goto {{Ext1}} }
        add element ip trellis-proxy service-nodeports { tcp . 30080 : goto {{Ext1}} }
        add element ip trellis-proxy firewall-ips { 192.0.2.10 . tcp . 80 : goto {{Fw1}} }

        # ns1/nopods: ClusterIP 10.96.0.20:80, NodePort 30081, no endpoints: rejected
        add element ip trellis-proxy no-endpoint-services { 10.96.0.20 . tcp . 80 : goto reject-chain }
        add element ip trellis-proxy no-endpoint-nodeports { tcp . 30081 : goto reject-chain }

        # kube-system/dns: 10.96.0.53 udp 53, sessionAffinity ClientIP, one endpoint
        add set ip trellis-proxy {{DnsAffinity}} { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
        add chain ip trellis-proxy {{Dns}}
        add chain ip trellis-proxy {{DnsEp}}
        add rule ip trellis-proxy {{Dns}} ip daddr 10.96.0.53 udp dport 53 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
        add rule ip trellis-proxy {{Dns}} ip saddr @{{DnsAffinity}} goto {{DnsEp}}
        add rule ip trellis-proxy {{Dns}} numgen random mod 1 vmap { 0 : goto {{DnsEp}} }
        add rule ip trellis-proxy {{DnsEp}} ip saddr 10.244.1.9 jump mark-for-masquerade
        add rule ip trellis-proxy {{DnsEp}} update @{{DnsAffinity}} { ip saddr }
        add rule ip trellis-proxy {{DnsEp}} meta l4proto udp dnat to 10.244.1.9:53
        add element ip trellis-proxy service-ips { 10.96.0.53 . udp . 53 : goto {{Dns}} }

        add element ip trellis-proxy cluster-ips { 10.96.0.10, 10.96.0.20, 10.96.0.53 }
        add element ip trellis-proxy nodeport-ips { 172.30.0.11 }
        """;

    /// <summary>NetworkPolicy-style: an inet table, default deny for pods on the bridge, allow-lists in interval sets.</summary>
    public const string Policy = """
        add table inet trellis-policy
        add chain inet trellis-policy forward { type filter hook forward priority 0 ; policy drop ; }
        add chain inet trellis-policy ingress-ns1-web
        add chain inet trellis-policy allow-log
        add set inet trellis-policy web-pods { type ipv4_addr ; flags interval ; }
        add set inet trellis-policy web-allowed { type ipv4_addr . inet_service ; flags interval ; }
        add map inet trellis-policy ingress { type ipv4_addr : verdict ; flags interval ; }
        add element inet trellis-policy web-pods { 10.244.1.5, 10.244.2.7 }
        add element inet trellis-policy web-allowed { 10.244.1.0/24 . 8080, 10.244.3.0/24 . 8000-8090 }
        add element inet trellis-policy ingress { 10.244.1.5 : jump ingress-ns1-web, 10.244.2.7 : jump ingress-ns1-web }
        add rule inet trellis-policy forward ct state established,related accept
        add rule inet trellis-policy forward ct state invalid drop
        add rule inet trellis-policy forward meta nfproto ipv6 accept comment "policy is IPv4-only here"
        add rule inet trellis-policy forward iifname "eth0" oifname "trellis0" ip daddr 10.244.1.9 accept
        add rule inet trellis-policy forward ip daddr vmap @ingress
        add rule inet trellis-policy forward ip daddr != @web-pods accept
        add rule inet trellis-policy ingress-ns1-web ip saddr . th dport @web-allowed goto allow-log
        add rule inet trellis-policy ingress-ns1-web meta l4proto { tcp, udp } th dport { 80, 443 } accept
        add rule inet trellis-policy ingress-ns1-web counter log prefix "trellis-policy drop: " drop
        add rule inet trellis-policy allow-log counter accept
        """;
}
