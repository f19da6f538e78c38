/// The default model and policy, embedded so the service needs no files at run time.
/// They are byte-for-byte `config/authz/default_model.conf` and `default_policy.csv`
/// (a test keeps them in sync).
public enum DefaultPolicy {
    public static let model = #"""
        # StreamHub's default authorization model: RBAC with domains.
        # Request: subject (user:<id> / token:<id>), domain (tenant id), object (resource), action.
        # Roles are assigned per tenant (g, user:1, admin, tenant-1); role permissions use the
        # domain `*` so they hold in every tenant, and `*` as object or action means any.
        [request_definition]
        r = sub, dom, obj, act

        [policy_definition]
        p = sub, dom, obj, act

        [role_definition]
        g = _, _, _

        [policy_effect]
        e = some(where (p.eft == allow))

        [matchers]
        m = g(r.sub, p.sub, r.dom) && (p.dom == '*' || r.dom == p.dom) && (p.obj == '*' || r.obj == p.obj) && (p.act == '*' || r.act == p.act)
        """#

    public static let policy = #"""
        # Built-in roles, valid in every tenant (domain *). Resources and actions are the route
        # catalog's `resource:action` permissions.
        p, owner, *, *, *
        p, admin, *, app, *
        p, admin, *, stream, *
        p, admin, *, token, *
        p, admin, *, policy, *
        p, admin, *, config, *
        p, admin, *, user, read
        p, admin, *, user, write
        p, admin, *, tenant, read
        p, admin, *, cluster, read
        p, member, *, app, read
        p, member, *, app, write
        p, member, *, stream, read
        p, member, *, stream, write
        p, member, *, token, read
        p, member, *, config, read
        p, member, *, policy, read
        p, member, *, tenant, read
        p, member, *, user, read
        p, viewer, *, app, read
        p, viewer, *, stream, read
        p, viewer, *, config, read
        p, viewer, *, tenant, read
        """#
}
