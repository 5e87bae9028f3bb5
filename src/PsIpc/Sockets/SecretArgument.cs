using System;
using System.Diagnostics.CodeAnalysis;
using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;

namespace PsIpc.Sockets
{
    /// <summary>
    /// Lets -Secret take a SecureString or a credential (its password), the PowerShell way. Plain strings are
    /// refused: a secret typed as text ends up in the history and the transcript.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class SecretTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object? Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
            switch (value)
            {
                case null:
                    return null;
                case SecureString secure:
                    return secure;
                case PSCredential credential:
                    return credential.Password;
                case string _:
                    throw new ArgumentTransformationMetadataException(
                        "-Secret takes a SecureString or a credential, not plain text: for example (Read-Host -AsSecureString), " +
                        "(Get-Credential), or ConvertTo-SecureString read from a protected file.");
                default:
                    throw new ArgumentTransformationMetadataException(
                        $"-Secret takes a SecureString or a PSCredential, not a {value.GetType().Name}.");
            }
        }
    }

    internal static class SecretArgument
    {
        /// <summary>
        /// The shortest secret the cmdlets take. Anyone who can connect gets a server proof to guess the secret
        /// against offline; the key stretching costs each guess 100,000 HMACs, which protects a long random
        /// secret but not a word. Sixteen characters is the floor, not the advice (the examples use 32 random bytes).
        /// </summary>
        public const int MinimumLength = 16;

        /// <summary>Why -Secret cannot be used (EmptySecret, SecretTooShort), as a terminating error; null when it can.</summary>
        [SuppressMessage("Usage", "CA2208:Instantiate argument exceptions correctly",
            Justification = "The argument named is the cmdlet's -Secret, which is what the user gave and reads in the message.")]
        public static ErrorRecord? Refusal(SecureString? secret)
        {
            if (secret == null) return null;
            if (secret.Length == 0)
            {
                return new ErrorRecord(new ArgumentException("The shared secret (-Secret) is empty.", "Secret"),
                    "EmptySecret", ErrorCategory.InvalidArgument, null);
            }
            if (secret.Length < MinimumLength)
            {
                return new ErrorRecord(new ArgumentException(
                    $"The shared secret (-Secret) has {secret.Length} characters; it must have at least {MinimumLength}, and should be random: " +
                    "anyone who can connect can try to guess it offline. For example, 32 random bytes as Base64: " +
                    "[Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32)).", "Secret"),
                    "SecretTooShort", ErrorCategory.InvalidArgument, null);
            }
            return null;
        }

        /// <summary>The secret's UTF-8 bytes, the HMAC key of docs/protocol.md 11; the unmanaged copy is zeroed.</summary>
        /// <exception cref="ArgumentException">The secret is empty.</exception>
        [return: NotNullIfNotNull("secret")]
        public static byte[]? ToKey(SecureString? secret)
        {
            if (secret == null) return null;
            if (secret.Length == 0) throw new ArgumentException("The shared secret (-Secret) is empty.", nameof(secret));
            IntPtr unmanaged = Marshal.SecureStringToGlobalAllocUnicode(secret);
            try
            {
                return Encoding.UTF8.GetBytes(Marshal.PtrToStringUni(unmanaged, secret.Length));
            }
            finally
            {
                Marshal.ZeroFreeGlobalAllocUnicode(unmanaged);
            }
        }
    }
}
