using System;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using PsIpc.Transport;
using RabbitMQ.Client;

namespace PsIpc.Amqp
{
    /// <summary>Opens the connection: URI, credentials, TLS (system trust or a pinned thumbprint), recovery.</summary>
    internal static class AmqpConnector
    {
        /// <summary>The URI without its user info, for messages and Get-IpcChannel.</summary>
        public static string Describe(Uri uri) =>
            new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri.ToString();

        public static Uri ParseUri(string text, string target)
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? uri) ||
                !(string.Equals(uri.Scheme, "amqp", StringComparison.OrdinalIgnoreCase) || string.Equals(uri.Scheme, "amqps", StringComparison.OrdinalIgnoreCase)) ||
                string.IsNullOrEmpty(uri.Host))
            {
                throw new IpcException(IpcErrorKind.HostNotFound,
                    $"'{text}' is not an AMQP URI: write amqp://host[:port]/[vhost] (amqps:// for TLS).", target);
            }
            return uri;
        }

        /// <summary>
        /// Connects, retrying while no broker answers until the deadline (infinite: until Ctrl+C), so a
        /// worker started before the broker waits for it like New-IpcPipe -Connect waits for its server.
        /// Wrong credentials, TLS refusals and access errors fail at once.
        /// </summary>
        public static IConnection Connect(AmqpQueueOptions options, Uri uri, string clientName, string target, Deadline deadline, CancellationToken cancellationToken)
        {
            string endpoint = Describe(uri);
            string? refusedCertificate = null;
            var factory = new ConnectionFactory
            {
                Uri = uri,
                AutomaticRecoveryEnabled = true,
                TopologyRecoveryEnabled = true,
                NetworkRecoveryInterval = options.RecoveryInterval,
                RequestedHeartbeat = options.Heartbeat,
                MaxInboundMessageBodySize = (uint)options.MaxMessageSize,
                ClientProvidedName = clientName,
            };
            if (options.UserName != null) factory.UserName = options.UserName;
            if (options.Password != null) factory.Password = options.Password;
            if (factory.Ssl.Enabled)
            {
                // The client accepts a certificate for another host name on amqps:// URIs; PsIpc does not.
                factory.Ssl.AcceptablePolicyErrors = SslPolicyErrors.None;
                string? pin = NormalizeThumbprint(options.CertificateThumbprint);
                factory.Ssl.CertificateValidationCallback = (sender, certificate, chain, errors) =>
                {
                    string? thumbprint = certificate == null ? null : new X509Certificate2(certificate).Thumbprint;
                    bool accepted = pin != null
                        ? string.Equals(thumbprint, pin, StringComparison.OrdinalIgnoreCase)
                        : errors == SslPolicyErrors.None;
                    if (!accepted)
                    {
                        refusedCertificate = certificate == null
                            ? $"it presented no certificate ({errors})"
                            : pin != null
                                ? $"its certificate '{certificate.Subject}' has thumbprint {thumbprint}, not the pinned {pin}"
                                : $"its certificate '{certificate.Subject}' (thumbprint {thumbprint}) is not trusted: {errors}";
                    }
                    return accepted;
                };
            }

            int attempt = 0;
            while (true)
            {
                attempt++;
                refusedCertificate = null;
                // -TimeoutSeconds 0 still makes one attempt (a TCP connect and the AMQP handshake take time).
                Deadline attemptDeadline = attempt == 1 && deadline.HasExpired ? Deadline.After(OneAttempt) : deadline;
                // At most the client's 30 s connect timeout per attempt, less when the deadline is nearer.
                factory.RequestedConnectionTimeout = attemptDeadline.IsInfinite
                    ? ConnectionFactory.DefaultConnectionTimeout
                    : TimeSpan.FromMilliseconds(Math.Max(1, Math.Min(attemptDeadline.RemainingMilliseconds, 30000)));
                try
                {
                    return Waits.Run(token => factory.CreateConnectionAsync(token), attemptDeadline, cancellationToken);
                }
                catch (Waits.DeadlineExpired)
                {
                    throw new IpcException(IpcErrorKind.BrokerUnreachable,
                        $"No RabbitMQ broker answered at {endpoint} in time ({attempt} attempt{(attempt == 1 ? "" : "s")}).", target);
                }
                catch (Exception e) when (!(e is OperationCanceledException) || !cancellationToken.IsCancellationRequested)
                {
                    IpcException error = AmqpErrors.FromConnectFailure(e, endpoint, target, refusedCertificate);
                    if (!AmqpErrors.IsTransient(error) || deadline.HasExpired) throw error;
                }
                // Nobody listening yet: try again shortly (0.2 s, growing to 2 s), until the deadline.
                int pause = (int)Math.Min(2000, 200 * Math.Pow(1.5, Math.Min(attempt, 10)));
                if (!deadline.IsInfinite) pause = Math.Min(pause, deadline.RemainingMilliseconds);
                if (cancellationToken.WaitHandle.WaitOne(pause)) cancellationToken.ThrowIfCancellationRequested();
            }
        }

        /// <summary>What one attempt may take when the caller gave no time at all (-TimeoutSeconds 0).</summary>
        private static readonly TimeSpan OneAttempt = TimeSpan.FromSeconds(10);

        public static string? NormalizeThumbprint(string? thumbprint) =>
            thumbprint?.Replace(":", string.Empty).Replace(" ", string.Empty).ToUpperInvariant();
    }
}
