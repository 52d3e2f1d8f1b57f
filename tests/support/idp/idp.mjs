// Test-only OpenID Provider for tests/gateway/test_dashboard_auth.py (never run it anywhere else:
// devInteractions accepts any login with any password).
//
// Env: IDP_PORT, IDP_ISSUER, IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URIS and
// IDP_POST_LOGOUT_REDIRECT_URIS (comma-separated). Prints `IDP_READY <issuer>` once listening.
// Accounts: any login `x` is `x@example.test`, verified, unless `x` starts with "unverified".
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT || 4000);
const issuer = process.env.IDP_ISSUER || `http://127.0.0.1:${port}`;
const list = (name) => (process.env[name] || '').split(',').filter(Boolean);

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.IDP_CLIENT_ID || 'gateway',
    client_secret: process.env.IDP_CLIENT_SECRET || 'gateway-secret',
    redirect_uris: list('IDP_REDIRECT_URIS'),
    post_logout_redirect_uris: list('IDP_POST_LOGOUT_REDIRECT_URIS'),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // PKCE (S256) is mandatory for every authorization request.
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'nickname', 'picture'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.test`,
          email_verified: !id.startsWith('unverified'),
          name: `User ${id}`,
          nickname: id,
          picture: `https://images.example.test/${encodeURIComponent(id)}.png`,
        };
      },
    };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['test-cookie-key'] },
});

provider.listen(port, '127.0.0.1', () => console.log(`IDP_READY ${issuer}`));
