/**
 * Request and reply over a bench child's IPC channel: each message carries an
 * id, the reply with the same id settles it. For children other than the load
 * generator (load-client.ts), which answer one kind of question each.
 */
import type { ChildProcess } from 'node:child_process'

interface Reply {
  id: number
  type: string
  message?: string
}

export type IpcRequester<Request, Answer> = (request: Request) => Promise<Answer>

/** Sends `{ ...request, id }`; resolves with the reply of type `answerType`, rejects on a `failure` reply or the child's exit. */
export function ipcRequester<Request extends object, Answer extends Reply> (child: ChildProcess, name: string, answerType: Answer['type']): IpcRequester<Request, Answer> {
  let nextId = 1
  return (request) => {
    const id = nextId++
    return new Promise((resolve, reject) => {
      const onMessage = (message: Reply) => {
        if (message?.id !== id) return
        cleanup()
        if (message.type === answerType) resolve(message as Answer)
        else reject(new Error(`${name}: ${message.message ?? `unexpected ${message.type} reply`}`))
      }
      const onExit = () => {
        cleanup()
        reject(new Error(`${name} exited during a request`))
      }
      function cleanup () {
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      child.on('message', onMessage)
      child.once('exit', onExit)
      child.send({ ...request, id })
    })
  }
}
